package apiserver

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// CodeBadInput is the envelope code of a request whose input is wrong
// (SREWorks' "invalid parameter"); its HTTP status is 400.
const CodeBadInput = 10002

// Envelope is the body of every response.
type Envelope struct {
	Code      int    `json:"code"`
	Success   bool   `json:"success"`
	Message   string `json:"message"`
	RequestID string `json:"requestId"`
	Timestamp int64  `json:"timestamp"`
	Data      any    `json:"data"`
}

// Error is an error with the HTTP status and envelope code it is answered
// with.
type Error struct {
	Status  int
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

// errorf is an Error whose envelope code is its HTTP status.
func errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Code: status, Message: fmt.Sprintf(format, args...)}
}

// badInput is a 400 with code CodeBadInput.
func badInput(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBadInput, Message: fmt.Sprintf(format, args...)}
}

// asError is err as the Error it is answered with: an Error as it is, an
// API server's not-found, conflict or already-exists as 404 and 409, and
// anything else as a 500 carrying err's message.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case apierrors.IsNotFound(err):
		return errorf(http.StatusNotFound, "%v", err)
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err):
		return errorf(http.StatusConflict, "%v", err)
	}
	return errorf(http.StatusInternalServerError, "%v", err)
}

// responder writes envelopes stamped with the request's id and the clock.
type responder struct {
	now func() time.Time
}

func (p responder) ok(w http.ResponseWriter, r *http.Request, data any) {
	p.write(w, r, http.StatusOK, Envelope{Code: http.StatusOK, Success: true, Message: "SUCCESS", Data: data})
}

func (p responder) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err)
	p.write(w, r, e.Status, Envelope{Code: e.Code, Message: e.Message})
}

func (p responder) write(w http.ResponseWriter, r *http.Request, status int, env Envelope) {
	env.RequestID = requestID(r)
	env.Timestamp = p.now().UnixMilli()
	body, err := json.Marshal(env)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(Envelope{Code: status, Message: fmt.Sprintf("encoding the response: %v", err),
			RequestID: env.RequestID, Timestamp: env.Timestamp})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n')) // the client went away; nothing to tell it
}

// requestIDHeader carries the request id back, as set by the server.
const requestIDHeader = "X-Request-Id"

// withRequestID gives every request an id (30 hex digits, as SREWorks'),
// sent back in the X-Request-Id header and in the envelope. It replaces
// any id the client sent, so the id in a log line is always the server's.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [15]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		id := hex.EncodeToString(b[:])
		r.Header.Set(requestIDHeader, id)
		w.Header().Set(requestIDHeader, id)
		next.ServeHTTP(w, r)
	})
}

// requestID is the id withRequestID gave r.
func requestID(r *http.Request) string { return r.Header.Get(requestIDHeader) }
