package store

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A cursor is an opaque keyset position: the (created_at, id) of the last
// row of a page. Lists continue strictly after it in their newest-first
// order, so rows inserted meanwhile never shift a page.
type cursor struct {
	at time.Time
	id string // a uuid for deployments, a decimal bigint for events
}

func (c cursor) encode() string {
	raw := "1:" + strconv.FormatInt(c.at.UnixMicro(), 10) + ":" + c.id
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodeCursor parses s; checkID validates the id part. "" is no cursor.
func decodeCursor(s string, checkID func(string) (string, error)) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := &ValidationError{Field: "cursor", Problem: fmt.Sprintf("%q is not a cursor returned by this list", clip(s))}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	parts := strings.SplitN(string(raw), ":", 3)
	if len(parts) != 3 || parts[0] != "1" {
		return nil, bad
	}
	micros, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return nil, bad
	}
	id, err := checkID(parts[2])
	if err != nil {
		return nil, bad
	}
	return &cursor{at: time.UnixMicro(micros), id: id}, nil
}

func checkUUID(s string) (string, error) { return parseID("cursor", s) }

func checkEventID(s string) (string, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return "", fmt.Errorf("bad event id %q", s)
	}
	return strconv.FormatInt(n, 10), nil
}
