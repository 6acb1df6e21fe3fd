package events

// Data payloads.
//
// NO PII, EVER. Events fan out to several functions, sit in broker queues and
// dead-letter sinks and end up in logs, all outside the PII store's access
// control. So data carries only internal opaque identifiers: never resident
// ID numbers, names, phone numbers, addresses or anything derived from them.
// A consumer that needs such a value (sms-alert needs the phone number)
// resolves the opaque reference itself.
//
// Other conventions:
//   - JSON member names are camelCase.
//   - Instants are time.Time, encoded as RFC 3339.
//   - Money is integer fen (0.01 CNY) in int64 fields ending in Fen, so sums
//     are exact.
//   - Calendar dates (business dates) are Date strings "2006-01-02", always
//     meant in China time (Asia/Shanghai, UTC+8), because banks and the
//     social security bureau cut their days at Beijing midnight.

import (
	"slices"
	"time"
)

// ChinaTime is Asia/Shanghai. A fixed UTC+8 zone is exact (China has had no
// DST since 1991) and avoids depending on tzdata in minimal images.
var ChinaTime = time.FixedZone("CST", 8*60*60)

// Date is a calendar date "2006-01-02" in China time.
type Date string

// Valid reports whether d is a real calendar date in the canonical form.
func (d Date) Valid() bool {
	_, err := d.Time()
	return err == nil
}

// Time returns midnight at the start of d in China time.
func (d Date) Time() (time.Time, error) {
	return time.ParseInLocation(time.DateOnly, string(d), ChinaTime)
}

// DateOf returns the China-time calendar date containing t.
func DateOf(t time.Time) Date { return Date(t.In(ChinaTime).Format(time.DateOnly)) }

// Channel is where an applicant or card holder interacted with the platform.
type Channel string

const (
	ChannelH5       Channel = "h5"       // mobile web / mini-program
	ChannelOutlet   Channel = "outlet"   // staffed service counter
	ChannelKiosk    Channel = "kiosk"    // self-service terminal
	ChannelBank     Channel = "bank"     // partner bank branch
	ChannelEmployer Channel = "employer" // bulk application by an employer
)

func (Channel) Values() []string { return []string{"h5", "outlet", "kiosk", "bank", "employer"} }
func (c Channel) Valid() bool    { return slices.Contains(c.Values(), string(c)) }

// AuditResult is the outcome of a photo audit.
type AuditResult string

const (
	AuditApproved AuditResult = "approved"
	AuditRejected AuditResult = "rejected"
)

func (AuditResult) Values() []string { return []string{"approved", "rejected"} }
func (r AuditResult) Valid() bool    { return slices.Contains(r.Values(), string(r)) }

// ApplicationKind says what a card application is for.
type ApplicationKind string

const (
	KindFirst   ApplicationKind = "first"   // 首次申领: the person holds no card in use
	KindReissue ApplicationKind = "reissue" // 补卡: the old card was lost (formally) or cancelled after a loss
	KindRenewal ApplicationKind = "renewal" // 换卡: the old card is in hand but damaged or expired
)

func (ApplicationKind) Values() []string { return []string{"first", "reissue", "renewal"} }
func (k ApplicationKind) Valid() bool    { return slices.Contains(k.Values(), string(k)) }

// DiscrepancyKind classifies a reconciliation mismatch from the platform's
// point of view.
type DiscrepancyKind string

const (
	DiscrepancyLong           DiscrepancyKind = "long"            // 长款: bank has money the platform has no record of
	DiscrepancyShort          DiscrepancyKind = "short"           // 短款: platform record without money at the bank
	DiscrepancyAmountMismatch DiscrepancyKind = "amount-mismatch" // both sides have it, amounts differ
	DiscrepancyStatusMismatch DiscrepancyKind = "status-mismatch" // both sides have it, success/failure differs
	DiscrepancyDuplicate      DiscrepancyKind = "duplicate"       // the same transaction twice in one source
	DiscrepancyHISMissing     DiscrepancyKind = "his-missing"     // money taken, no HIS settlement: a refund is requested
	DiscrepancyHISExtra       DiscrepancyKind = "his-extra"       // the HIS settled what the platform has no record of
	DiscrepancyHISAmount      DiscrepancyKind = "his-amount-mismatch"
)

func (DiscrepancyKind) Values() []string {
	return []string{"long", "short", "amount-mismatch", "status-mismatch", "duplicate", "his-missing", "his-extra",
		"his-amount-mismatch"}
}
func (k DiscrepancyKind) Valid() bool { return slices.Contains(k.Values(), string(k)) }

// SMSPurpose drives sms-alert's rate limits and priority: codes are urgent,
// notices may be batched.
type SMSPurpose string

const (
	PurposeNotice SMSPurpose = "notice"
	PurposeCode   SMSPurpose = "code"
	PurposeAlert  SMSPurpose = "alert"
)

func (SMSPurpose) Values() []string { return []string{"notice", "code", "alert"} }
func (p SMSPurpose) Valid() bool    { return slices.Contains(p.Values(), string(p)) }

// SMSCarrier is the SMS gateway protocol, which identifies the carrier.
type SMSCarrier string

const (
	CarrierCMPP SMSCarrier = "cmpp" // China Mobile
	CarrierSMGP SMSCarrier = "smgp" // China Telecom
	CarrierSGIP SMSCarrier = "sgip" // China Unicom
)

func (SMSCarrier) Values() []string { return []string{"cmpp", "smgp", "sgip"} }
func (c SMSCarrier) Valid() bool    { return slices.Contains(c.Values(), string(c)) }

// SMSStatus is the final delivery report status.
type SMSStatus string

const (
	SMSStatusDelivered SMSStatus = "delivered"
	SMSStatusFailed    SMSStatus = "failed"
	SMSStatusExpired   SMSStatus = "expired"
)

func (SMSStatus) Values() []string { return []string{"delivered", "failed", "expired"} }
func (s SMSStatus) Valid() bool    { return slices.Contains(s.Values(), string(s)) }

// KioskStatus is a kiosk's self-assessed health.
type KioskStatus string

const (
	KioskStatusOK       KioskStatus = "ok"
	KioskStatusDegraded KioskStatus = "degraded" // serving, but e.g. printer ribbon low
	KioskStatusFault    KioskStatus = "fault"    // cannot serve
)

func (KioskStatus) Values() []string { return []string{"ok", "degraded", "fault"} }
func (s KioskStatus) Valid() bool    { return slices.Contains(s.Values(), string(s)) }

// KioskCommand is a remote maintenance command.
type KioskCommand string

const (
	CommandReboot        KioskCommand = "reboot"
	CommandSelfCheck     KioskCommand = "self-check"
	CommandUploadLogs    KioskCommand = "upload-logs"
	CommandSyncBlacklist KioskCommand = "sync-blacklist"
	CommandPause         KioskCommand = "pause"       // stop serving residents, keep reporting
	CommandResume        KioskCommand = "resume"      // serve again after pause
	CommandRestartApp    KioskCommand = "restart-app" // restart the kiosk application
	CommandUpgrade       KioskCommand = "upgrade"     // args: presigned URL, SM2 signature, version
)

func (KioskCommand) Values() []string {
	return []string{"reboot", "self-check", "upload-logs", "sync-blacklist", "pause", "resume", "restart-app", "upgrade"}
}
func (c KioskCommand) Valid() bool { return slices.Contains(c.Values(), string(c)) }

// ApplicationSubmittedData is the data of ApplicationSubmitted.
type ApplicationSubmittedData struct {
	ApplicationID string    `json:"applicationId" event:"required"`
	Channel       Channel   `json:"channel" event:"required"`
	PersonRef     string    `json:"personRef" event:"required"` // opaque person id, not the ID number
	SubmittedAt   time.Time `json:"submittedAt" event:"required"`
	// Kind is absent for a first application; a replacement (补换卡) says reissue or renewal
	// and names the card it supersedes, so the producer lists it as a replacement.
	Kind           ApplicationKind `json:"kind,omitempty"`
	ReplacesCardID string          `json:"replacesCardId,omitempty"` // internal card id, not the card number
}

// Validate ties a replacement kind to the card it replaces.
func (d ApplicationSubmittedData) Validate() error {
	replacement := d.Kind == KindReissue || d.Kind == KindRenewal
	if replacement != (d.ReplacesCardID != "") {
		return fieldError("replacesCardId", "required exactly when kind is reissue or renewal")
	}
	return nil
}

// PhotoSubmittedData is the data of PhotoSubmitted.
type PhotoSubmittedData struct {
	ApplicationID string    `json:"applicationId" event:"required"`
	PhotoObject   string    `json:"photoObject" event:"required"` // object storage key; the bytes never travel in events
	Channel       Channel   `json:"channel" event:"required"`
	KioskID       string    `json:"kioskId,omitempty"` // set when taken at a kiosk
	SubmittedAt   time.Time `json:"submittedAt" event:"required"`
}

// PhotoAuditedData is the data of PhotoAudited.
type PhotoAuditedData struct {
	ApplicationID string      `json:"applicationId" event:"required"`
	Result        AuditResult `json:"result" event:"required"`
	Reason        string      `json:"reason,omitempty"`         // required when rejected: it is shown to the applicant
	Auditor       string      `json:"auditor" event:"required"` // opaque operator id
	AuditedAt     time.Time   `json:"auditedAt" event:"required"`
}

// Validate enforces that rejections explain themselves, since the applicant
// must be told what to fix.
func (d PhotoAuditedData) Validate() error {
	if d.Result == AuditRejected && d.Reason == "" {
		return fieldError("reason", "required when result is rejected")
	}
	return nil
}

// CardStatusChangedData is the data of CardStatusChanged. From and To are
// status codes as configured per province, so they are only checked to be
// non-empty and different.
type CardStatusChangedData struct {
	CardID string `json:"cardId" event:"required"` // internal card id, not the card number
	From   string `json:"from" event:"required"`
	To     string `json:"to" event:"required"`
	Reason string `json:"reason" event:"required"`
	// Channel where the change was requested.
	Channel   Channel   `json:"channel" event:"required"`
	ChangedAt time.Time `json:"changedAt" event:"required"`
	// StatusVersion numbers the card's status changes (1 for the first after
	// issue). Consumers that may see changes out of order (retries) keep the
	// highest per card; terminals sync the blacklist by its own version.
	StatusVersion int64 `json:"statusVersion" event:"required,min=1"`
}

// Validate rejects no-op transitions, which would bump the blacklist
// version for nothing.
func (d CardStatusChangedData) Validate() error {
	if d.From == d.To {
		return fieldError("to", "must differ from from")
	}
	return nil
}

// ReconciliationCompletedData is the data of ReconciliationCompleted.
type ReconciliationCompletedData struct {
	RunID         string `json:"runId" event:"required"`
	BusinessDate  Date   `json:"businessDate" event:"required"`
	Bank          string `json:"bank" event:"required"` // bank code
	Matched       int    `json:"matched" event:"required,min=0"`
	Discrepancies int    `json:"discrepancies" event:"required,min=0"`
	TotalFen      int64  `json:"totalFen" event:"required"`
}

// DiscrepancyFoundData is the data of DiscrepancyFound.
type DiscrepancyFoundData struct {
	RunID        string          `json:"runId" event:"required"`
	BusinessDate Date            `json:"businessDate" event:"required"`
	Kind         DiscrepancyKind `json:"kind" event:"required"`
	// AmountFen is the size of the difference; its direction is in Kind.
	AmountFen int64  `json:"amountFen" event:"required,min=0"`
	TxnRef    string `json:"txnRef" event:"required"` // platform or bank transaction reference
}

// SMSRequestedData is the data of SMSRequested.
type SMSRequestedData struct {
	MessageID string `json:"messageId" event:"required"` // idempotency key for sms-alert
	Template  string `json:"template" event:"required"`  // template code registered with the carriers
	// Params fill the template. Like everything else they must not contain
	// PII; sms-alert adds personal values after resolving RecipientRef.
	Params map[string]string `json:"params,omitempty"`
	// RecipientRef is an opaque person id; sms-alert resolves the number.
	RecipientRef string     `json:"recipientRef" event:"required"`
	Purpose      SMSPurpose `json:"purpose" event:"required"`
}

// SMSDeliveredData is the data of SMSDelivered.
type SMSDeliveredData struct {
	MessageID   string     `json:"messageId" event:"required"`
	Carrier     SMSCarrier `json:"carrier" event:"required"`
	Status      SMSStatus  `json:"status" event:"required"`
	DeliveredAt time.Time  `json:"deliveredAt" event:"required"` // time of the status report
}

// KioskHeartbeatData is the data of KioskHeartbeat. KioskID must equal the
// {kioskId} segment of the event source (checked by Validate).
type KioskHeartbeatData struct {
	KioskID       string      `json:"kioskId" event:"required"`
	At            time.Time   `json:"at" event:"required"`
	Status        KioskStatus `json:"status" event:"required"`
	ReaderPresent bool        `json:"readerPresent" event:"required"` // card reader detected on USB
	Version       string      `json:"version" event:"required"`       // kiosk software version
	QueuedEvents  int         `json:"queuedEvents" event:"required,min=0"`
}

// KioskCommandIssuedData is the data of KioskCommandIssued.
type KioskCommandIssuedData struct {
	CommandID string       `json:"commandId" event:"required"`
	KioskID   string       `json:"kioskId" event:"required"`
	Command   KioskCommand `json:"command" event:"required"`
	IssuedAt  time.Time    `json:"issuedAt" event:"required"`
}

// fieldError builds the error a data struct's Validate method returns; field
// is the JSON name, and Validate reports it as "data.<field>".
func fieldError(field, reason string) error {
	return &ValidationError{Fields: map[string]string{field: reason}}
}
