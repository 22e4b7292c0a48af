package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
)

// Audit object types and actions.
const (
	AuditWebhook = "webhook"
	AuditOAuth   = "oauth_credential"
	AuditRole    = "role"
	AuditMember  = "member"
	AuditToken   = "api_token"
	// AuditCompany is the company itself (created, renamed, disabled, enabled by the platform
	// API); its object_id is 0, the company being the log's own.
	AuditCompany = "company"
)

// AuditEntry is one row of the audit log: who did what to which object, and when.
type AuditEntry struct {
	ID          int64   `json:"id"`
	MemberID    *int64  `json:"member_id"`
	MemberEmail *string `json:"member_email"`
	// Actor names who acted when it was not a member: "platform:<token name>".
	Actor      *string         `json:"actor"`
	Action     string          `json:"action"`
	ObjectType string          `json:"object_type"`
	ObjectID   int64           `json:"object_id"`
	Detail     json.RawMessage `json:"detail"`
	At         time.Time       `json:"at"`
}

// AuditFilter narrows the audit log; BeforeID is the cursor (0: newest).
type AuditFilter struct {
	ObjectType *string
	ObjectID   *int64
	BeforeID   int64
	Limit      int // default and maximum 500
}

// AuditRecord appends a row to a company's audit log. detail is encoded as JSON (nil: {}). Call it
// in the transaction of the change it records.
func (s *Store) AuditRecord(ctx context.Context, companyID string, actor *int64, action, objectType string, objectID int64, detail any) error {
	return s.auditRecord(ctx, companyID, actor, nil, action, objectType, objectID, detail)
}

// AuditRecordPlatform is AuditRecord for an action of the platform API: the actor is
// "platform:<token name>" instead of a member.
func (s *Store) AuditRecordPlatform(ctx context.Context, companyID string, p PlatformPrincipal, action, objectType string, objectID int64, detail any) error {
	actor := p.Actor()
	return s.auditRecord(ctx, companyID, nil, &actor, action, objectType, objectID, detail)
}

func (s *Store) auditRecord(ctx context.Context, companyID string, member *int64, actor *string, action, objectType string, objectID int64, detail any) error {
	raw := json.RawMessage(`{}`)
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			return fmt.Errorf("encode audit detail: %w", err)
		}
		raw = b
	}
	return mapErr(s.q.AuditLogInsert(ctx, dbsqlc.AuditLogInsertParams{
		CompanyID: companyID, MemberID: member, Actor: actor, Action: action, ObjectType: objectType, ObjectID: objectID, Detail: raw,
	}))
}

// AuditList lists a company's audit log, newest first.
func (s *Store) AuditList(ctx context.Context, companyID string, f AuditFilter) ([]AuditEntry, error) {
	if f.Limit <= 0 || f.Limit > maxWebhookListPerPage {
		f.Limit = maxWebhookListPerPage
	}
	rows, err := s.q.AuditLogList(ctx, dbsqlc.AuditLogListParams{
		CompanyID: companyID, ObjectType: f.ObjectType, ObjectID: f.ObjectID, BeforeID: f.BeforeID, MaxRows: int32(f.Limit),
	})
	return rowsAs(rows, err, func(r dbsqlc.AuditLogListRow) AuditEntry {
		return AuditEntry{
			ID: r.ID, MemberID: r.MemberID, MemberEmail: r.MemberEmail, Actor: r.Actor, Action: r.Action,
			ObjectType: r.ObjectType, ObjectID: r.ObjectID, Detail: r.Detail, At: r.At,
		}
	})
}
