package card

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Applying collapsed deltas of any windows of a change log gives the set the log
// describes.
func TestCollapse_WindowsMergeToTheModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	codes := DefaultCodes()
	for round := range 50 {
		var log []blChange
		model := map[string]bool{}
		for v := int64(1); v <= 300; v++ {
			no := fmt.Sprintf("A%08d", rng.IntN(20))
			op, st := "add", TemporaryLoss
			if rng.IntN(2) == 0 {
				op, st = "remove", Normal
			}
			log = append(log, blChange{Version: v, CardNo: no, Op: op, Status: st})
			model[no] = op == "add"
		}
		held := map[string]bool{}
		for i := 0; i < len(log); {
			j := min(len(log), i+1+rng.IntN(40))
			adds, removes := collapse(log[i:j], codes)
			for _, e := range adds {
				held[e.CardNo] = true
			}
			for _, e := range removes {
				delete(held, e.CardNo)
			}
			i = j
		}
		for no, listed := range model {
			if held[no] != listed {
				t.Fatalf("round %d: %s: model %v, merged %v", round, no, listed, held[no])
			}
		}
	}
}

func TestCollapse_NewestWins(t *testing.T) {
	adds, removes := collapse([]blChange{
		{1, "A00000001", "add", TemporaryLoss}, {2, "A00000001", "remove", Normal}, {3, "A00000002", "add", FormalLoss},
		{4, "A00000001", "add", FormalLoss},
	}, DefaultCodes())
	if len(removes) != 0 || len(adds) != 2 || adds[0].CardNo != "A00000001" || adds[0].Version != 4 ||
		adds[0].StatusCode != "2" || adds[1].CardNo != "A00000002" {
		t.Errorf("got adds %+v removes %+v", adds, removes)
	}
}
