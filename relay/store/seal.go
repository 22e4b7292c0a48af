package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
)

// Sealed columns. Each value is sealed bound to its table, column, company and row
// (crypt.Binding), so a value copied to another row or company does not open there. legacy is
// the purpose version-1 values of the column were sealed with, before rows were bound.
type sealedColumn struct {
	table, column, legacy string
}

func (c sealedColumn) bind(company string, row int64) crypt.Binding {
	return crypt.Binding{Table: c.table, Column: c.column, Company: company, Row: row, Legacy: c.legacy}
}

func colSigningSecret() sealedColumn {
	return sealedColumn{"webhook", "signing_secret_enc", "webhook.signing_secret"}
}
func colPrevSecret() sealedColumn {
	return sealedColumn{"webhook", "previous_secret_enc", "webhook.previous_secret"}
}
func colSecretHeaders() sealedColumn {
	return sealedColumn{"webhook", "secret_headers_enc", "webhook.secret_headers"}
}
func colExtraParams() sealedColumn {
	return sealedColumn{"oauth_credential", "extra_params_enc", ""}
}
func colClientSecret() sealedColumn {
	return sealedColumn{"oauth_credential", "client_secret_enc", "oauth.client_secret"}
}
func colCode() sealedColumn { return sealedColumn{"oauth_credential", "code_enc", "oauth.code"} }
func colRefreshToken() sealedColumn {
	return sealedColumn{"oauth_credential", "refresh_token_enc", "oauth.refresh_token"}
}
func colAccessToken() sealedColumn {
	return sealedColumn{"oauth_credential", "access_token_enc", "oauth.access_token"}
}

// colIDKey is the public-id key: instance-wide (no company), row 1, never sealed as version 1.
func colIDKey() sealedColumn { return sealedColumn{"id_key", "key_enc", ""} }

// sealError describes a sealed value that did not open, for Webhook.SealError and
// OAuthCredential.SealError: a message an operator can act on.
func sealError(what string, err error) string {
	switch {
	case errors.Is(err, crypt.ErrUnbound):
		return what + " does not open: it was sealed before secrets were bound to their row, and --open-unbound-secrets is off; run `walhook keys reseal --open-unbound-secrets` once"
	case errors.Is(err, crypt.ErrUnknownKey):
		return what + " does not open: it was sealed with a key the keyring (--encryption-keys) no longer holds; put the key back, or set the secret again"
	default:
		return what + " does not open: it was changed or moved here from another row, company or column in the database; set the secret again"
	}
}

// idKey holds the public ids once loaded; shared by a store and its transactions.
type idKey struct {
	mu  sync.Mutex
	ids *PublicIDs
}

// PublicIDs encodes and decodes the public ids of one database: what the API and the
// webhook-id header show in place of row ids (crypt.IDCipher). It is safe for concurrent use.
type PublicIDs struct {
	c *crypt.IDCipher
}

// DeliveryIDPrefix starts a delivery's public id, which is also its Standard Webhooks webhook-id.
const DeliveryIDPrefix = "msg_"

// Delivery is the public id of delivery id of a company: the same for every attempt, resync and
// replica, and across encryption-key rotations.
func (p *PublicIDs) Delivery(companyID string, id int64) string {
	return p.c.Encode(DeliveryIDPrefix, companyID, id)
}

// ParseDelivery returns the row id behind a public delivery id of a company; ok is false for
// anything else — a row id, another company's id, garbage.
func (p *PublicIDs) ParseDelivery(companyID, public string) (id int64, ok bool) {
	return p.c.Decode(DeliveryIDPrefix, companyID, public)
}

// EventIDPrefix starts an event's id, the envelope's "id".
const EventIDPrefix = "evt_"

// Event is the envelope id of the event at a source position: "evt_" and 32 hex characters, a
// keyed digest of the position, so it is stable across replays and replicas but tells nothing
// about the position (outbox row ids and WAL positions are guessable).
func (p *PublicIDs) Event(sourceKey string) string {
	d := p.c.Digest(sourceKey)
	return EventIDPrefix + hex.EncodeToString(d[:])
}

// PublicIDs returns the database's public ids, keyed by walhook.id_key (sealed), which the first
// process that asks creates. It is loaded once per store and never changes.
func (s *Store) PublicIDs(ctx context.Context) (*PublicIDs, error) {
	s.ids.mu.Lock()
	defer s.ids.mu.Unlock()
	if s.ids.ids != nil {
		return s.ids.ids, nil
	}
	sealed, err := s.q.IDKeyGet(ctx)
	if errors.Is(mapErr(err), ErrNotFound) {
		if err := s.q.IDKeyCreate(ctx, s.keys.Seal(crypt.NewIDKey(), colIDKey().bind("", 1))); err != nil {
			return nil, fmt.Errorf("create public-id key: %w", mapErr(err))
		}
		sealed, err = s.q.IDKeyGet(ctx) // another process may have stored its key first
	}
	if err != nil {
		return nil, fmt.Errorf("read public-id key: %w", mapErr(err))
	}
	key, err := s.keys.Open(sealed, colIDKey().bind("", 1))
	if err != nil {
		return nil, fmt.Errorf("open public-id key (walhook.id_key): %w", err)
	}
	c, err := crypt.NewIDCipher(key)
	if err != nil {
		return nil, err
	}
	s.ids.ids = &PublicIDs{c: c}
	return s.ids.ids, nil
}

// DeliveryPublicID is the public id of a delivery of a company.
func (s *Store) DeliveryPublicID(ctx context.Context, companyID string, id int64) (string, error) {
	p, err := s.PublicIDs(ctx)
	if err != nil {
		return "", err
	}
	return p.Delivery(companyID, id), nil
}

// DeliveryIDFromPublic returns the row id behind a public delivery id of a company; anything
// else — a row id, another company's id, garbage — is ErrNotFound.
func (s *Store) DeliveryIDFromPublic(ctx context.Context, companyID, public string) (int64, error) {
	p, err := s.PublicIDs(ctx)
	if err != nil {
		return 0, err
	}
	id, ok := p.ParseDelivery(companyID, public)
	if !ok {
		return 0, ErrNotFound
	}
	return id, nil
}

// ResealCounts says what Reseal did.
type ResealCounts struct {
	Resealed   int // values rewritten with the current key, bound to their row
	Current    int // values already sealed that way
	Unreadable int // values that did not open (moved, changed, or an unknown key): left as they are
	Changed    int // rows edited while being re-sealed: the edit sealed them already
	// Sealed counts the header and extra parameter values stored in plain that the rules hide
	// (marked secret or credential-looking), sealed now: rows written before such values were
	// sealed, or since the word list grew.
	Sealed int
}

// Reseal re-seals every sealed value in the database with the keyring's current key and the
// row binding, and seals the header and extra parameter values that the rules hide but that are
// stored in plain, batch rows at a time, each batch in its own transaction. It is idempotent, and
// after it the keyring's other keys may be removed. progress, when not nil, is called after each
// batch with the table and the counts so far.
func (s *Store) Reseal(ctx context.Context, batch int, progress func(table string, c ResealCounts)) (ResealCounts, error) {
	if batch <= 0 {
		batch = 500
	}
	var total ResealCounts
	// row re-seals the sealed values of one row (nil: no value). It returns the new values and
	// whether the row needs a write, and counts what it found in pending: committed to total by
	// done once the write (if any) landed.
	var pending ResealCounts
	row := func(company string, id int64, cols []sealedColumn, olds [][]byte) ([][]byte, bool) {
		pending = ResealCounts{}
		news := make([][]byte, len(olds))
		for i, old := range olds {
			if old == nil {
				continue
			}
			plain, err := s.keys.Open(old, cols[i].bind(company, id))
			switch {
			case err != nil:
				pending.Unreadable++
			case s.keys.IsCurrent(old):
				news[i] = old
				pending.Current++
			default:
				news[i] = s.keys.Seal(plain, cols[i].bind(company, id))
				pending.Resealed++
			}
		}
		if pending.Unreadable > 0 {
			// Left as it is, with the row's other values: a row is rewritten whole or not at all.
			pending = ResealCounts{Unreadable: pending.Unreadable}
			return nil, false
		}
		return news, pending.Resealed > 0
	}
	done := func(written bool) {
		if !written {
			pending = ResealCounts{Changed: 1}
		}
		total.Resealed += pending.Resealed
		total.Current += pending.Current
		total.Unreadable += pending.Unreadable
		total.Changed += pending.Changed
		total.Sealed += pending.Sealed
	}
	// hidden seals a row's list values that the rules hide but that are stored in plain (see
	// splitHidden), after row opened (and re-sealed) the row's values: v[i] is the list's sealed
	// column as row left it. It returns the list's new plain column and whether it changed.
	hidden := func(col sealedColumn, company string, id int64, pj json.RawMessage, v [][]byte, i int, hide func(storedEntry) bool) (json.RawMessage, bool, error) {
		if v == nil {
			return pj, false, nil // unreadable: left as it is
		}
		var es []storedEntry
		if err := json.Unmarshal(pj, &es); err != nil {
			return nil, false, fmt.Errorf("decode %s of row %d: %w", col.column, id, err)
		}
		n := unsealedHidden(es, hide)
		if n == 0 {
			return pj, false, nil
		}
		es, sealErr, err := s.joinHidden(col, company, id, pj, v[i], col.column)
		if err != nil {
			return nil, false, err
		}
		if sealErr != "" {
			return nil, false, errors.New(sealErr) // row opened it a moment ago
		}
		npj, sealed, err := s.splitHidden(col, company, id, es, hide)
		if err != nil {
			return nil, false, err
		}
		v[i] = sealed
		pending.Sealed += n
		return npj, true, nil
	}
	// The id key first: everything else may be read while it is rewritten.
	if err := s.Tx(ctx, func(tx *Store) error {
		old, err := tx.q.IDKeyGet(ctx)
		if errors.Is(mapErr(err), ErrNotFound) {
			return nil
		}
		if err != nil {
			return mapErr(err)
		}
		v, write := row("", 1, []sealedColumn{colIDKey()}, [][]byte{old})
		if !write {
			done(true)
			return nil
		}
		n, err := tx.q.IDKeyReseal(ctx, dbsqlc.IDKeyResealParams{NewEnc: v[0], OldEnc: old})
		if err != nil {
			return mapErr(err)
		}
		done(n > 0)
		return nil
	}); err != nil {
		return total, fmt.Errorf("reseal id_key: %w", err)
	}
	if progress != nil {
		progress("id_key", total)
	}
	for after := int64(0); ; {
		var rows []dbsqlc.WebhookSealedBatchRow
		err := s.Tx(ctx, func(tx *Store) error {
			var err error
			rows, err = tx.q.WebhookSealedBatch(ctx, dbsqlc.WebhookSealedBatchParams{AfterID: after, MaxRows: int32(batch)})
			if err != nil {
				return mapErr(err)
			}
			for _, r := range rows {
				v, write := row(r.CompanyID, r.ID,
					[]sealedColumn{colSigningSecret(), colPrevSecret(), colSecretHeaders()},
					[][]byte{r.SigningSecretEnc, r.PreviousSecretEnc, r.SecretHeadersEnc})
				headers, sealed, err := hidden(colSecretHeaders(), r.CompanyID, r.ID, r.Headers, v, 2, headerHidden)
				if err != nil {
					return err
				}
				if write = write || sealed; !write {
					done(true)
					continue
				}
				n, err := tx.q.WebhookReseal(ctx, dbsqlc.WebhookResealParams{
					NewSigning: v[0], NewPrevious: v[1], NewHeaders: v[2], NewPlainHeaders: headers, ID: r.ID,
					OldSigning: r.SigningSecretEnc, OldPrevious: r.PreviousSecretEnc, OldHeaders: r.SecretHeadersEnc,
					OldPlainHeaders: r.Headers,
				})
				if err != nil {
					return mapErr(err)
				}
				done(n > 0)
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("reseal webhooks after id %d: %w", after, err)
		}
		if progress != nil {
			progress("webhook", total)
		}
		if len(rows) < batch {
			break
		}
		after = rows[len(rows)-1].ID
	}
	for after := int64(0); ; {
		var rows []dbsqlc.OAuthCredentialSealedBatchRow
		err := s.Tx(ctx, func(tx *Store) error {
			var err error
			rows, err = tx.q.OAuthCredentialSealedBatch(ctx, dbsqlc.OAuthCredentialSealedBatchParams{AfterID: after, MaxRows: int32(batch)})
			if err != nil {
				return mapErr(err)
			}
			for _, r := range rows {
				v, write := row(r.CompanyID, r.ID,
					[]sealedColumn{colClientSecret(), colCode(), colRefreshToken(), colAccessToken(), colExtraParams()},
					[][]byte{r.ClientSecretEnc, r.CodeEnc, r.RefreshTokenEnc, r.AccessTokenEnc, r.ExtraParamsEnc})
				extra, sealed, err := hidden(colExtraParams(), r.CompanyID, r.ID, r.ExtraParams, v, 4, paramHidden)
				if err != nil {
					return err
				}
				if write = write || sealed; !write {
					done(true)
					continue
				}
				n, err := tx.q.OAuthCredentialReseal(ctx, dbsqlc.OAuthCredentialResealParams{
					NewClientSecret: v[0], NewCode: v[1], NewRefreshToken: v[2], NewAccessToken: v[3],
					NewExtraParams: extra, NewExtraParamsEnc: v[4], ID: r.ID,
					OldClientSecret: r.ClientSecretEnc, OldCode: r.CodeEnc, OldRefreshToken: r.RefreshTokenEnc, OldAccessToken: r.AccessTokenEnc,
					OldExtraParams: r.ExtraParams, OldExtraParamsEnc: r.ExtraParamsEnc,
				})
				if err != nil {
					return mapErr(err)
				}
				done(n > 0)
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("reseal oauth credentials after id %d: %w", after, err)
		}
		if progress != nil {
			progress("oauth_credential", total)
		}
		if len(rows) < batch {
			break
		}
		after = rows[len(rows)-1].ID
	}
	return total, nil
}
