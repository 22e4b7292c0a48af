package capture

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/walhook/walhook/relay/store"
)

// Who may emit (docs/architecture.md): any role can write a logical message with walhook's
// prefix, so capture believes one only when walhook.emit signed it. walhook.emit runs as the
// owner of walhook's schema (SECURITY DEFINER), reads a key only that role can read
// (walhook.emit_key) and writes
//
//	{"mac": "<key id>:<HMAC-SHA256(key, content), 64 hex digits>", <content without its "{">
//
// content being the UTF-8 JSON {"event": …, "payload": …, "company_id": …} as jsonb prints it.
// The MAC is a member of the same JSON object so that a relay of the previous release, which
// ignores it, keeps capturing during a rolling upgrade. A message with the prefix whose MAC does
// not verify under a key in the table is forged: counted, logged, skipped.

// emitKeyKeep is how many keys a rotation keeps: the new one signs, the previous one still
// verifies messages emitted before the rotation and not yet read from the slot.
const emitKeyKeep = 2

// emitKeyMaxAge is how long a session trusts the keys it loaded: a key a rotation deleted stops
// verifying within this time (or at once, when a message signed with a newer key arrives).
const emitKeyMaxAge = time.Minute

// emitKeyReloadTimeout bounds reloading the keys when a message names a newer one.
const emitKeyReloadTimeout = 5 * time.Second

// errKeysUnavailable means the keys could not be read: the stream stops and replays later rather
// than refusing messages it could not check.
var errKeysUnavailable = errors.New("emit keys unavailable")

// emitKeys are the keys walhook.emit's messages are verified with.
type emitKeys struct {
	keys   map[int32][]byte // id → HMAC key (the 64-byte zero-padded key)
	newest int32
	// unsignedBefore: an unsigned message (the format before migration 0010) below this WAL
	// position was written before walhook.emit signed anything, and is accepted. 0: none.
	unsignedBefore pglogrepl.LSN
}

// newEmitKeys checks stored keys (opad must match ipad) and recovers the HMAC keys from them.
func newEmitKeys(stored []store.EmitKey, unsignedBefore string) (*emitKeys, error) {
	k := &emitKeys{keys: make(map[int32][]byte, len(stored))}
	for _, s := range stored {
		if len(s.Ipad) != sha256.BlockSize || len(s.Opad) != sha256.BlockSize {
			return nil, fmt.Errorf("emit key %d: pads of %d and %d bytes, want %d", s.ID, len(s.Ipad), len(s.Opad), sha256.BlockSize)
		}
		key := make([]byte, sha256.BlockSize)
		for i := range key {
			key[i] = s.Ipad[i] ^ 0x36
			if s.Opad[i] != key[i]^0x5c {
				return nil, fmt.Errorf("emit key %d: ipad and opad are not of one key", s.ID)
			}
		}
		k.keys[s.ID] = key
		k.newest = max(k.newest, s.ID)
	}
	if unsignedBefore != "" {
		lsn, err := pglogrepl.ParseLSN(unsignedBefore)
		if err != nil {
			return nil, fmt.Errorf("parse unsigned_before %q: %w", unsignedBefore, err)
		}
		k.unsignedBefore = lsn
	}
	return k, nil
}

// keyring holds the emit keys of one replication session. It reloads them when a message names
// a key newer than the newest it knows (a rotation since they were loaded) and when they are
// older than emitKeyMaxAge (a rotation deleted a key). An older unknown id is forged without a
// query; a newer one costs one query per message, bounded by the writer's own rate.
type keyring struct {
	load   func(ctx context.Context) (*emitKeys, error)
	cur    *emitKeys
	loaded time.Time
}

func (k *keyring) reload(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, emitKeyReloadTimeout)
	defer cancel()
	cur, err := k.load(lctx)
	if err != nil {
		return fmt.Errorf("%w: %w", errKeysUnavailable, err)
	}
	k.cur, k.loaded = cur, time.Now()
	return nil
}

// loadEmitKeys reads the keys from the store.
func loadEmitKeys(st *store.Store) func(ctx context.Context) (*emitKeys, error) {
	return func(ctx context.Context) (*emitKeys, error) {
		stored, before, err := st.EmitKeys(ctx)
		if err != nil {
			return nil, fmt.Errorf("load emit keys: %w", err)
		}
		return newEmitKeys(stored, before)
	}
}

// verify returns the content of a walhook message when walhook.emit provably wrote it (or it
// predates signing), and false when it is forged. An error means the keys could not be read.
func (k *keyring) verify(ctx context.Context, lsn pglogrepl.LSN, msg []byte) ([]byte, bool, error) {
	id, mac, content, signed := parseSigned(msg)
	if !signed {
		if len(msg) > 0 && msg[0] == '{' && !bytes.HasPrefix(msg, []byte(`{"mac"`)) && lsn < k.cur.unsignedBefore {
			return msg, true, nil
		}
		return nil, false, nil
	}
	if k.load != nil && (id > k.cur.newest || time.Since(k.loaded) > emitKeyMaxAge) {
		if err := k.reload(ctx); err != nil {
			return nil, false, err
		}
	}
	key, ok := k.cur.keys[id]
	if !ok {
		return nil, false, nil
	}
	h := hmac.New(sha256.New, key)
	h.Write(content)
	if !hmac.Equal(h.Sum(nil), mac) {
		return nil, false, nil
	}
	return content, true, nil
}

// macPrefix opens every signed message.
const macPrefix = `{"mac": "`

// parseSigned splits `{"mac": "<id>:<64 hex>", <rest>` into the key id, the MAC and the signed
// content "{" + rest. signed is false when msg is not exactly of the form walhook.emit writes (a
// decimal id without sign or leading zero, lowercase hex, one space), so one content has one
// accepted spelling.
func parseSigned(msg []byte) (id int32, mac, content []byte, signed bool) {
	rest, ok := bytes.CutPrefix(msg, []byte(macPrefix))
	if !ok {
		return 0, nil, nil, false
	}
	idText, rest, ok := bytes.Cut(rest, []byte(":"))
	if !ok || len(idText) == 0 || len(idText) > 10 || idText[0] < '1' || idText[0] > '9' {
		return 0, nil, nil, false
	}
	n, err := strconv.ParseInt(string(idText), 10, 32)
	if err != nil {
		return 0, nil, nil, false
	}
	const hexLen = 2 * sha256.Size
	if len(rest) < hexLen+3 || string(rest[hexLen:hexLen+3]) != `", ` {
		return 0, nil, nil, false
	}
	for _, c := range rest[:hexLen] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return 0, nil, nil, false
		}
	}
	mac = make([]byte, sha256.Size)
	if _, err := hex.Decode(mac, rest[:hexLen]); err != nil {
		return 0, nil, nil, false
	}
	content = make([]byte, 0, 1+len(rest)-hexLen-3)
	content = append(content, '{')
	content = append(content, rest[hexLen+3:]...)
	return int32(n), mac, content, true
}

// signMessage renders content (a JSON object) as walhook.emit would with key id: tests use it,
// and it documents the format in code.
func signMessage(id int32, key, content []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(content)
	out := fmt.Appendf(nil, "%s%d:%x\", ", macPrefix, id, h.Sum(nil))
	if len(content) > 0 {
		content = content[1:]
	}
	return append(out, content...)
}

// NewEmitKey draws a new emit key from crypto/rand: 32 random bytes, zero-padded to HMAC's
// block, stored as its inner and outer pads.
func NewEmitKey() (store.EmitKey, error) {
	key := make([]byte, sha256.BlockSize)
	if _, err := rand.Read(key[:32]); err != nil {
		return store.EmitKey{}, fmt.Errorf("draw emit key: %w", err)
	}
	k := store.EmitKey{Ipad: make([]byte, sha256.BlockSize), Opad: make([]byte, sha256.BlockSize)}
	for i, b := range key {
		k.Ipad[i] = b ^ 0x36
		k.Opad[i] = b ^ 0x5c
	}
	return k, nil
}

// RotateEmitKey adds a new emit key, which walhook.emit signs with from now on, and keeps the
// previous one (messages it signed may still wait in the slot); older keys are deleted. It
// returns the new key's id. A running capture picks the new key up at its first message.
func RotateEmitKey(ctx context.Context, st *store.Store) (int32, error) {
	k, err := NewEmitKey()
	if err != nil {
		return 0, err
	}
	id, err := st.EmitKeyRotate(ctx, k, emitKeyKeep)
	if err != nil {
		return 0, fmt.Errorf("rotate emit key: %w", err)
	}
	return id, nil
}
