package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/link"
)

// apiError is an error with the HTTP status and Confluent error_code it is
// answered with.
type apiError struct {
	status int
	code   int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// badRequest is a request the server could not read (error_code 400).
func badRequest(format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, code: 400, msg: fmt.Sprintf(format, args...)}
}

// errorTable maps domain errors to status and error_code. Anything not in
// it is a server fault: 500, logged.
var errorTable = []struct {
	err    error
	status int
	code   int
}{
	{link.ErrClusterNotFound, http.StatusNotFound, 404},
	{link.ErrLinkNotFound, http.StatusNotFound, 404},
	{link.ErrMirrorNotFound, http.StatusNotFound, 40403},
	{link.ErrTopicNotFound, http.StatusNotFound, 40403},
	{link.ErrConfigNotFound, http.StatusNotFound, 404},
	{link.ErrLinkExists, http.StatusConflict, 40902},
	{link.ErrTopicExists, http.StatusBadRequest, 40002},
	{link.ErrInvalid, http.StatusBadRequest, 40002},
	// cp-server answers 403 when a link with live mirrors is deleted.
	{link.ErrLinkInUse, http.StatusForbidden, 403},
	{link.ErrNotMirror, http.StatusForbidden, 40301},
	// Strait's own: a switchover that did not happen, and why.
	{link.ErrRefused, http.StatusConflict, 40901},
}

// classify returns the status, error_code and message for err.
func classify(err error) (int, int, string, bool) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, ae.code, ae.msg, true
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e.status, e.code, err.Error(), true
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusInternalServerError, 50003, "The operation timed out: " + err.Error(), false
	}
	return http.StatusInternalServerError, 500, "Internal Server Error: " + err.Error(), false
}

// writeError writes err as Confluent's error body; server faults are
// logged.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away; nobody reads the answer
	}
	status, code, msg, known := classify(err)
	if !known {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, api.Error{ErrorCode: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error_code":500,"message":"Internal Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// WriteUnavailable answers 503 with Confluent's error body: the API cannot
// be served by this instance now (starting, standby), and msg says why.
func WriteUnavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", "5")
	writeJSON(w, http.StatusServiceUnavailable, api.Error{ErrorCode: http.StatusServiceUnavailable, Message: msg})
}
