// Package models holds the domain types of the points ledger: organisations, members,
// roles, the Error type clients may see, and the small value types (Points, Period).
package models

import (
	"errors"
	"fmt"
)

// Error codes a client may see. The HTTP layer maps each code to one status.
const (
	EMalformed    = "malformed"              // 400: the body is not what the endpoint reads
	EUnauthorized = "unauthorized"           // 401: no or invalid credentials
	EForbidden    = "forbidden"              // 403: known caller, not allowed
	ENotFound     = "not_found"              // 404: unknown, or outside the caller's scope
	ETimeout      = "timeout"                // 408: the request did not arrive in time
	EConflict     = "conflict"               // 409: the state does not allow it
	ETooLarge     = "too_large"              // 413
	EMediaType    = "unsupported_media_type" // 415
	EInvalid      = "invalid"                // 422: validation, with per-field messages
	ERateLimited  = "rate_limited"           // 429
	EInternal     = "internal"               // 500, never with details
	EBadGateway   = "bad_gateway"            // 502: an upstream (WeChat) answered nonsense
	EUnavailable  = "unavailable"            // 503: the database or an upstream is unreachable
)

// Error is the one error type whose code and message reach clients. Everything else is
// an internal error: logged, and answered with a fixed message.
type Error struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
	// Rows carries per-row problems of a roster import.
	Rows []RowError `json:"rows,omitempty"`
	// RetryAfter, in seconds, goes to the Retry-After header of a 429 or 503.
	RetryAfter int `json:"-"`
	// Err is the internal cause, for the log only; it never reaches the client.
	Err error `json:"-"`
}

// RowError is one problem in one row of an imported file. Row numbers count the header as row 1.
type RowError struct {
	Row     int    `json:"row"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a validation error naming the fields at fault.
func Invalid(fields map[string]string) *Error {
	return &Error{Code: EInvalid, Message: "the request has invalid fields", Fields: fields}
}

// InvalidField returns a validation error for one field.
func InvalidField(field, msg string) *Error {
	return Invalid(map[string]string{field: msg})
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, else EInternal.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}
