// Package webhook holds walhook's domain types: webhooks, OAuth credentials, trigger events,
// events and their envelope, deliveries and attempts, with their states, and the validation of
// what users set. Every other package depends on it; it depends only on relay/netguard, the SSRF
// policy its validation of URLs applies.
package webhook

import (
	"encoding/json"
	"time"
)

// Method is the HTTP method a webhook sends with.
type Method string

// The methods a webhook may use.
const (
	MethodGet    Method = "GET"
	MethodPost   Method = "POST"
	MethodPut    Method = "PUT"
	MethodPatch  Method = "PATCH"
	MethodDelete Method = "DELETE"
)

// Methods lists the valid methods in the order the product shows them.
var Methods = []Method{MethodGet, MethodPost, MethodPut, MethodPatch, MethodDelete}

// Valid reports whether m is one of Methods.
func (m Method) Valid() bool {
	switch m {
	case MethodGet, MethodPost, MethodPut, MethodPatch, MethodDelete:
		return true
	}
	return false
}

// Header is a custom request header. A secret header's value is encrypted at rest, masked in
// history and never returned by the API.
type Header struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Secret bool   `json:"secret,omitempty"`
}

// Param is one selected parameter of a webhook with raw data off: the body carries Key with the
// value found at Path in the event envelope (for example "data.email").
type Param struct {
	Key  string `json:"key"`
	Path string `json:"path"`
}

// Status is the outcome of a webhook's last delivery.
type Status string

// Last-sent statuses.
const (
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
)

// Webhook is a company's subscription of an HTTP endpoint to one or more trigger events.
type Webhook struct {
	ID        int64
	CompanyID string
	Name      string
	URL       string
	Method    Method
	// EventKeys are the trigger events the webhook is subscribed to, in the order chosen: at
	// least one, at most MaxEvents, each once. An event matches when its key is any of them.
	EventKeys []string
	OAuthID   *int64
	Headers   []Header
	RawData   bool
	Params    []Param
	Active    bool
	// RateLimit caps the requests per second sent to the endpoint, over every replica (nil: no
	// limit; 1 to MaxRateLimit). Deliveries beyond it wait their turn; they do not fail.
	RateLimit *int

	// Secret is the Standard Webhooks signing secret ("whsec_…"). PreviousSecret, until
	// PreviousSecretExpiresAt, also signs, so receivers can rotate without dropping requests.
	Secret                  string
	PreviousSecret          string
	PreviousSecretExpiresAt *time.Time
	// SealError says which stored secret did not open and why ("" when all did): a value moved
	// in from another row or company, or sealed with a key the keyring no longer holds. Such a
	// secret reads as empty; the relay does not send with it.
	SealError string

	LastSentAt     *time.Time
	LastStatus     *Status
	FailingSince   *time.Time
	DisabledReason *string
	DisabledAt     *time.Time

	CreatedBy *int64
	UpdatedBy *int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Queued reports whether the webhook's deliveries must go through the durable queue (the
// delivery table and the dispatcher's claims) rather than be handed to the dispatcher in memory:
// true when it has a rate limit, whose tokens are taken by the claims across replicas.
func (w *Webhook) Queued() bool { return w.RateLimit != nil }

// GrantType is an OAuth 2.0 grant.
type GrantType string

// Supported grants.
const (
	GrantAuthorizationCode GrantType = "authorization_code"
	GrantClientCredentials GrantType = "client_credentials"
	GrantRefreshToken      GrantType = "refresh_token"
)

// Valid reports whether g is a supported grant.
func (g GrantType) Valid() bool {
	switch g {
	case GrantAuthorizationCode, GrantClientCredentials, GrantRefreshToken:
		return true
	}
	return false
}

// KeyValue is an extra OAuth parameter. A hidden one (marked secret, or with a credential-looking
// key: see KeyValue.Masked) has its value encrypted at rest and never returned by the API.
type KeyValue struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Secret bool   `json:"secret,omitempty"`
}

// OAuthCredential is how walhook obtains a bearer token for a webhook. ClientSecret, Code,
// RefreshToken, AccessToken and the hidden ExtraParams values are secret: encrypted at rest and never returned by the API.
type OAuthCredential struct {
	ID             int64
	CompanyID      string
	Name           string
	TokenURL       string
	Method         string // "POST" (default) or "GET"
	GrantType      GrantType
	ClientID       string
	ClientSecret   string
	Code           string
	Scope          string
	ExtraParams    []KeyValue
	RefreshToken   string
	AccessToken    string
	TokenExpiresAt *time.Time
	// SealError says which stored secret did not open and why ("" when all did); see
	// Webhook.SealError.
	SealError string

	CreatedBy *int64
	UpdatedBy *int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// EventSource says where a trigger event comes from.
type EventSource string

// Event sources.
const (
	SourceTable  EventSource = "table"
	SourceOutbox EventSource = "outbox"
)

// EventType is an entry of the trigger-event catalog.
type EventType struct {
	Key          string
	Description  string
	Source       EventSource
	SourceTable  string   // schema-qualified or bare table name, for SourceTable
	Operations   []string // insert, update, delete
	TenantColumn string
	Columns      []string // an UPDATE fires only when one of these changed (empty: any)
	Sample       json.RawMessage
	RetiredAt    *time.Time
}

// Event is a captured trigger event.
type Event struct {
	ID         int64
	SourceKey  string
	CompanyID  string
	EventKey   string
	Payload    json.RawMessage // the Envelope
	OccurredAt time.Time
	CapturedAt time.Time
}

// DeliveryState is the state of a delivery.
type DeliveryState string

// Delivery states. Pending covers waiting, in flight and scheduled for retry.
const (
	DeliveryPending   DeliveryState = "pending"
	DeliverySucceeded DeliveryState = "succeeded"
	DeliveryFailed    DeliveryState = "failed"
)

// Outcome is the result of one attempt.
type Outcome string

// Attempt outcomes.
const (
	OutcomeSucceeded Outcome = "succeeded"
	OutcomeRetry     Outcome = "retry"
	OutcomeFailed    Outcome = "failed"
)

// Permission names a permission a role can be granted.
type Permission string

// PermManageWebhooks lets a member create, edit, delete, duplicate, toggle, test and resync
// webhooks and OAuth credentials. A company's owner always has it.
const PermManageWebhooks Permission = "manage_webhooks"

// TestResult is what a test send answers: the request as sent (secrets masked) and the response.
type TestResult struct {
	Request    RequestSnapshot   `json:"request"`
	Status     int               `json:"status,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Body       string            `json:"body,omitempty"`
	DurationMS int64             `json:"duration_ms"`
	Error      string            `json:"error,omitempty"`
	Succeeded  bool              `json:"succeeded"`
}

// RequestSnapshot is a request as recorded in history: secret header values masked.
type RequestSnapshot struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}
