package card

import (
	"errors"
	"testing"
)

func TestDecide_Table(t *testing.T) {
	type want struct {
		to      Status
		current Status // for a *TransitionError
		field   string // for an *InputError
	}
	cases := []struct {
		from     Status
		action   Action
		channel  Channel
		identity bool
		want     want
	}{
		// Temporary loss: phone, online, bank; only from normal.
		{Normal, ActTemporaryLoss, ChannelPhone, false, want{to: TemporaryLoss}},
		{Normal, ActTemporaryLoss, ChannelOnline, false, want{to: TemporaryLoss}},
		{Normal, ActTemporaryLoss, ChannelBank, true, want{to: TemporaryLoss}},
		{Normal, ActTemporaryLoss, ChannelOutlet, false, want{field: "channel"}},
		{Normal, ActTemporaryLoss, ChannelKiosk, false, want{field: "channel"}},
		{TemporaryLoss, ActTemporaryLoss, ChannelPhone, false, want{current: TemporaryLoss}},
		{FormalLoss, ActTemporaryLoss, ChannelPhone, false, want{current: FormalLoss}},
		{Cancelled, ActTemporaryLoss, ChannelPhone, false, want{current: Cancelled}},
		// Formal loss: identity verified, not by phone; from normal or temporary loss.
		{Normal, ActFormalLoss, ChannelOutlet, true, want{to: FormalLoss}},
		{TemporaryLoss, ActFormalLoss, ChannelOnline, true, want{to: FormalLoss}},
		{TemporaryLoss, ActFormalLoss, ChannelKiosk, true, want{to: FormalLoss}},
		{TemporaryLoss, ActFormalLoss, ChannelBank, false, want{field: "identityVerified"}},
		{Normal, ActFormalLoss, ChannelPhone, true, want{field: "channel"}},
		{FormalLoss, ActFormalLoss, ChannelOutlet, true, want{current: FormalLoss}},
		{Cancelled, ActFormalLoss, ChannelOutlet, true, want{current: Cancelled}},
		// Unlock: temporary loss from any channel; formal loss in person with identity.
		{TemporaryLoss, ActUnlock, ChannelPhone, false, want{to: Normal}},
		{TemporaryLoss, ActUnlock, ChannelKiosk, false, want{to: Normal}},
		{FormalLoss, ActUnlock, ChannelOutlet, true, want{to: Normal}},
		{FormalLoss, ActUnlock, ChannelKiosk, true, want{to: Normal}},
		{FormalLoss, ActUnlock, ChannelOutlet, false, want{field: "identityVerified"}},
		{FormalLoss, ActUnlock, ChannelPhone, true, want{field: "channel"}},
		{FormalLoss, ActUnlock, ChannelOnline, true, want{field: "channel"}},
		{Normal, ActUnlock, ChannelOutlet, true, want{current: Normal}},
		{Cancelled, ActUnlock, ChannelOutlet, true, want{current: Cancelled}},
		// Cancel: at a counter, identity verified, from any live status; final.
		{Normal, ActCancel, ChannelOutlet, true, want{to: Cancelled}},
		{TemporaryLoss, ActCancel, ChannelBank, true, want{to: Cancelled}},
		{FormalLoss, ActCancel, ChannelOutlet, true, want{to: Cancelled}},
		{FormalLoss, ActCancel, ChannelOutlet, false, want{field: "identityVerified"}},
		{Normal, ActCancel, ChannelOnline, true, want{field: "channel"}},
		{Cancelled, ActCancel, ChannelOutlet, true, want{current: Cancelled}},
		// Lapse: the system's, from temporary loss only.
		{TemporaryLoss, ActLapse, ChannelSystem, false, want{to: Normal}},
		{FormalLoss, ActLapse, ChannelSystem, false, want{current: FormalLoss}},
		{TemporaryLoss, ActLapse, ChannelPhone, false, want{field: "channel"}},
		// Callers cannot use the system channel.
		{TemporaryLoss, ActUnlock, ChannelSystem, false, want{field: "channel"}},
		// Unknown action.
		{Normal, Action("steal"), ChannelOutlet, true, want{field: "action"}},
	}
	for _, c := range cases {
		got, err := Decide(c.from, c.action, c.channel, c.identity)
		name := string(c.from) + "/" + string(c.action) + "/" + string(c.channel)
		var te *TransitionError
		var ie *InputError
		switch {
		case c.want.to != "":
			if err != nil || got != c.want.to {
				t.Errorf("%s: want %s, got %q %v", name, c.want.to, got, err)
			}
		case c.want.current != "":
			if !errors.As(err, &te) || te.Current != c.want.current || te.Action != c.action {
				t.Errorf("%s: want a transition error naming %s, got %v", name, c.want.current, err)
			}
		default:
			if !errors.As(err, &ie) || len(ie.Fields) != 1 || ie.Fields[0].Name != c.want.field {
				t.Errorf("%s: want an input error on %s, got %v", name, c.want.field, err)
			}
		}
	}
}

// Properties of the whole table, over every combination.
func TestDecide_Properties(t *testing.T) {
	all := append(Channels(), ChannelSystem)
	reach := map[Status]bool{Normal: true}
	for _, from := range Statuses() {
		for _, a := range append(Actions(), ActLapse) {
			for _, ch := range all {
				for _, id := range []bool{false, true} {
					to, err := Decide(from, a, ch, id)
					if err != nil {
						continue
					}
					reach[to] = true
					if to == from {
						t.Errorf("%s %s: a no-op transition would bump the blacklist for nothing", from, a)
					}
					if from == Cancelled {
						t.Errorf("cancelled is final, but %s leads to %s", a, to)
					}
					if ch == ChannelSystem && a != ActLapse {
						t.Errorf("%s accepted on the system channel", a)
					}
					if !id {
						// Identity-free changes only ever make a card less usable, or undo a temporary loss.
						if to == FormalLoss || to == Cancelled || (from == FormalLoss && to == Normal) {
							t.Errorf("%s %s → %s without identity verification", from, a, to)
						}
					}
				}
			}
		}
	}
	for _, s := range Statuses() {
		if !reach[s] {
			t.Errorf("status %s is unreachable", s)
		}
	}
	if !TemporaryLoss.Listed() || !FormalLoss.Listed() || !Cancelled.Listed() || Normal.Listed() {
		t.Error("listed statuses: lost and cancelled, never normal")
	}
}
