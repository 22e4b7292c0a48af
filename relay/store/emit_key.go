package store

import (
	"context"

	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
)

// EmitKey is one key walhook.emit signs its logical messages with, stored as HMAC-SHA256's
// padded inner and outer blocks (64 bytes each) so SQL can compute the MAC with core sha256().
type EmitKey struct {
	ID         int32
	Ipad, Opad []byte
}

// EmitKeys returns the keys capture verifies walhook.emit's messages with (newest first) and the
// WAL position below which it accepts the old unsigned format ("" for none).
func (s *Store) EmitKeys(ctx context.Context) ([]EmitKey, string, error) {
	rows, err := s.q.EmitKeyList(ctx)
	if err != nil {
		return nil, "", mapErr(err)
	}
	keys := make([]EmitKey, len(rows))
	for i, r := range rows {
		keys[i] = EmitKey{ID: r.ID, Ipad: r.Ipad, Opad: r.Opad}
	}
	before, err := s.q.EmitKeyUnsignedBefore(ctx)
	if err != nil {
		return nil, "", mapErr(err)
	}
	return keys, before, nil
}

// EmitKeyRotate adds a key that signs from now on and deletes all but the newest keep keys, in
// one transaction. It returns the new key's id.
func (s *Store) EmitKeyRotate(ctx context.Context, k EmitKey, keep int) (int32, error) {
	var id int32
	err := s.Tx(ctx, func(tx *Store) error {
		var err error
		if id, err = tx.q.EmitKeyAdd(ctx, dbsqlc.EmitKeyAddParams{Ipad: k.Ipad, Opad: k.Opad}); err != nil {
			return err
		}
		_, err = tx.q.EmitKeyPrune(ctx, int32(max(keep, 1)))
		return err
	})
	return id, mapErr(err)
}
