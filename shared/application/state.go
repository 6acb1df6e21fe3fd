package application

import "slices"

// Status is the state of an application.
type Status string

// The states. An application goes submitted → photo_pending_audit → photo_approved |
// photo_rejected (a new photo: photo_pending_audit again) → in_production → mailed
// (waybill) → delivered → activated. withdrawn ends an application before production.
// A replacement (补换卡, replace.go) follows the same path; one that reuses the photo on
// record goes submitted → photo_approved at once (photo.reuse), and its activation
// cancels the card it replaces.
const (
	Submitted         Status = "submitted"
	PhotoPendingAudit Status = "photo_pending_audit"
	PhotoApproved     Status = "photo_approved"
	PhotoRejected     Status = "photo_rejected"
	InProduction      Status = "in_production"
	Mailed            Status = "mailed"
	Delivered         Status = "delivered"
	Activated         Status = "activated"
	Withdrawn         Status = "withdrawn"
)

// Label is the Chinese progress label shown to the applicant (制卡进度).
func (s Status) Label() string {
	switch s {
	case Submitted:
		return "已申领，待上传照片"
	case PhotoPendingAudit:
		return "照片审核中"
	case PhotoApproved:
		return "照片审核通过，待制卡"
	case PhotoRejected:
		return "照片审核未通过，请重新上传"
	case InProduction:
		return "制卡中"
	case Mailed:
		return "已寄出"
	case Delivered:
		return "已送达，待启用"
	case Activated:
		return "已启用"
	case Withdrawn:
		return "已撤销"
	}
	return string(s)
}

// Action names a transition; it is also the audit action suffix ("application.<action>").
type Action string

// Actions.
const (
	ActSubmit     Action = "submit"
	ActPhoto      Action = "photo.submit"
	ActReusePhoto Action = "photo.reuse" // a replacement takes over the approved photo on record
	ActApprove    Action = "photo.approve"
	ActReject     Action = "photo.reject"
	ActProduce    Action = "production.start"
	ActMail       Action = "mail"
	ActDeliver    Action = "deliver"
	ActActivate   Action = "activate"
	ActWithdrawal Action = "withdraw"
)

// transitions: for each action, the states it may start from and the state it leads to.
var transitions = map[Action]struct {
	from []Status
	to   Status
}{
	// A new photo may replace one still waiting for audit or one that was rejected.
	ActPhoto:      {[]Status{Submitted, PhotoPendingAudit, PhotoRejected}, PhotoPendingAudit},
	ActApprove:    {[]Status{PhotoPendingAudit}, PhotoApproved},
	ActReusePhoto: {[]Status{Submitted}, PhotoApproved},
	ActReject:     {[]Status{PhotoPendingAudit}, PhotoRejected},
	ActProduce:    {[]Status{PhotoApproved}, InProduction},
	ActMail:       {[]Status{InProduction}, Mailed},
	ActDeliver:    {[]Status{Mailed}, Delivered},
	ActActivate:   {[]Status{Delivered}, Activated},
	ActWithdrawal: {[]Status{Submitted, PhotoPendingAudit, PhotoApproved, PhotoRejected}, Withdrawn},
}

// Next returns the state action leads to from s, and whether it is allowed from s.
func Next(s Status, a Action) (Status, bool) {
	t, ok := transitions[a]
	if !ok || !slices.Contains(t.from, s) {
		return "", false
	}
	return t.to, true
}

// AllowedFrom lists the states action may start from.
func AllowedFrom(a Action) []Status { return slices.Clone(transitions[a].from) }
