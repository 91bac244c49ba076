package store

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// translate turns a CHECK or NOT NULL violation that slipped past the Go
// validation into a *ValidationError naming the column; other errors pass
// through unchanged.
func translate(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch pgErr.Code {
	case "23514": // check_violation
		field := strings.TrimSuffix(strings.TrimPrefix(pgErr.ConstraintName, pgErr.TableName+"_"), "_valid")
		field = strings.TrimSuffix(field, "_length")
		return &ValidationError{Field: field, Problem: "violates the database constraint " + pgErr.ConstraintName}
	case "23502": // not_null_violation
		return &ValidationError{Field: pgErr.ColumnName, Problem: "must not be null"}
	case "22P02", "22021", "22P05": // invalid text representation, bad encoding, untranslatable character
		return &ValidationError{Field: "input", Problem: pgErr.Message}
	}
	return err
}
