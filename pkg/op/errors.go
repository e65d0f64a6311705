package op

import (
	"errors"
	"fmt"
)

// Error is the one shape of an op failure: which op, where in the template,
// whether a retry can help, and the cause.
type Error struct {
	Op        Name
	Path      string
	Permanent bool
	Err       error
}

func (e *Error) Error() string {
	return fmt.Sprintf("op %s at %q: %v", e.Op, e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as one a retry cannot fix (bad parameters, an unknown
// cluster, an invalid URL).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// Permanentf is Permanent(fmt.Errorf(...)).
func Permanentf(format string, args ...any) error {
	return permanent{fmt.Errorf(format, args...)}
}

// IsPermanent reports whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p permanent
	if errors.As(err, &p) {
		return true
	}
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// wrap puts err into the one shape.
func wrap(call *Call, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Op: call.Name, Path: call.Path, Permanent: IsPermanent(err), Err: err}
}
