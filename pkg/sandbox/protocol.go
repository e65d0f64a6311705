package sandbox

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"sync"
	"time"

	"github.com/stepflow-dev/stepflow/pkg/eval"
	"github.com/stepflow-dev/stepflow/pkg/op"
)

// kind is what a message is; see the package doc.
type kind string

const (
	kindHello  kind = "hello"  // parent → worker, first: the limits
	kindEval   kind = "eval"   // parent → worker: open an Evaluate session
	kindCond   kind = "cond"   // parent → worker: open a Condition session
	kindCheck  kind = "check"  // parent → worker: open a Check session
	kindResult kind = "result" // parent → worker: an op call's result
	kindCancel kind = "cancel" // parent → worker: the caller gave up
	kindCall   kind = "call"   // worker → parent: an op call of a session
	kindDone   kind = "done"   // worker → parent: a session's end
)

// message is the one frame of the protocol; Kind says which fields are set.
type message struct {
	Kind kind   `json:"k"`
	ID   uint64 `json:"id,omitempty"`
	// Call numbers the op calls within a session (call, result).
	Call uint64 `json:"c,omitempty"`

	Hello  *hello           `json:"hello,omitempty"`
	Eval   *evalRequest     `json:"eval,omitempty"`
	Cond   *condRequest     `json:"cond,omitempty"`
	Check  *eval.Definition `json:"check,omitempty"`
	OpCall *opCall          `json:"op,omitempty"`
	Result *opResult        `json:"res,omitempty"`
	Done   *sessionDone     `json:"done,omitempty"`
}

// hello carries the worker's limits.
type hello struct {
	// MemoryLimit bounds the growth of the worker's address space, in
	// bytes; 0 is none. There is no time bound here: the parent times the
	// CUE work and kills the worker.
	MemoryLimit int64 `json:"memoryLimit,omitempty"`
}

type evalRequest struct {
	Definition eval.Definition `json:"def"`
	Parameters json.RawMessage `json:"params,omitempty"`
	Context    map[string]any  `json:"context,omitempty"`
	Step       op.Step         `json:"step"`
	Outputs    []string        `json:"outputs,omitempty"`
	Data       bool            `json:"data,omitempty"`
}

type condRequest struct {
	Expr  string         `json:"expr"`
	Scope map[string]any `json:"scope"`
}

type opCall struct {
	Name   op.Name         `json:"name"`
	Path   string          `json:"path"`
	Class  op.Class        `json:"class"`
	Params json.RawMessage `json:"params"`
}

type opResult struct {
	Returns   json.RawMessage `json:"returns,omitempty"`
	Stop      *op.Stop        `json:"stop,omitempty"`
	Message   string          `json:"message,omitempty"`
	Err       string          `json:"err,omitempty"`
	Permanent bool            `json:"permanent,omitempty"`
}

// sessionDone ends a session: an Evaluate's outcome, a Condition's answer
// or a Check's error.
type sessionDone struct {
	Phase      eval.Phase    `json:"phase,omitempty"`
	Reason     string        `json:"reason,omitempty"`
	Message    string        `json:"message,omitempty"`
	SuspendFor time.Duration `json:"suspendFor,omitempty"`
	Calls      []callRecord  `json:"calls,omitempty"`
	// ErrCall is the op call whose error is the outcome's Err; Err is its
	// text when it was no op call's (or a Condition's or Check's error).
	ErrCall uint64         `json:"errCall,omitempty"`
	Err     string         `json:"err,omitempty"`
	Outputs []outputResult `json:"outputs,omitempty"`
	Data    any            `json:"data,omitempty"`
	Bool    bool           `json:"bool,omitempty"`
}

type callRecord struct {
	Op    op.Name  `json:"op"`
	Path  string   `json:"path"`
	Class op.Class `json:"class"`
	Stop  string   `json:"stop,omitempty"`
}

type outputResult struct {
	Value any    `json:"value,omitempty"`
	Err   string `json:"err,omitempty"`
}

// conn is one end of the protocol: one encoder and one decoder, each over
// a buffered stream. Send is safe for concurrent use; Receive is not.
type conn struct {
	mu  sync.Mutex
	bw  *bufio.Writer
	enc *json.Encoder
	dec *json.Decoder
}

func newConn(r io.Reader, w io.Writer) *conn {
	bw := bufio.NewWriterSize(w, 64<<10)
	return &conn{bw: bw, enc: json.NewEncoder(bw), dec: json.NewDecoder(bufio.NewReaderSize(r, 64<<10))}
}

func (c *conn) send(m *message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.enc.Encode(m); err != nil {
		return err
	}
	return c.bw.Flush()
}

func (c *conn) receive() (*message, error) {
	m := &message{}
	if err := c.dec.Decode(m); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeParams decodes an op call's JSON parameters into the params
// struct of o, with whole numbers in untyped fields as int64, as CUE's own
// decoding gives them.
func decodeParams(o op.Op, raw json.RawMessage) (any, error) {
	params := o.NewParams()
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(params); err != nil {
		return nil, err
	}
	numbers(reflect.ValueOf(params))
	return params, nil
}

// numbers replaces the json.Numbers that UseNumber left in interface
// values under v by int64 or float64.
func numbers(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			numbers(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				numbers(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			numbers(v.Index(i))
		}
	case reflect.Map:
		if v.Type().Elem().Kind() != reflect.Interface {
			for _, k := range v.MapKeys() {
				e := reflect.New(v.Type().Elem()).Elem()
				e.Set(v.MapIndex(k))
				numbers(e)
				v.SetMapIndex(k, e)
			}
			return
		}
		for _, k := range v.MapKeys() {
			v.SetMapIndex(k, reflect.ValueOf(plainNumbers(v.MapIndex(k).Interface())))
		}
	case reflect.Interface:
		if !v.IsNil() && v.CanSet() {
			if x := plainNumbers(v.Interface()); x != nil {
				v.Set(reflect.ValueOf(x))
			}
		}
	}
}

// plainNumbers does numbers for plain JSON data (maps, slices, scalars).
func plainNumbers(x any) any {
	switch t := x.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case map[string]any:
		for k, e := range t {
			t[k] = plainNumbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = plainNumbers(e)
		}
	}
	return x
}

// remoteError is an op call's error as the worker sees it: the parent's
// error text, whether it is permanent, and which call it came from.
type remoteError struct {
	call      uint64
	msg       string
	permanent bool
}

func (e *remoteError) Error() string { return e.msg }

// opError turns a result's error back into an error for the evaluator.
func (r *opResult) opError(call uint64) error {
	if r.Err == "" {
		return nil
	}
	err := error(&remoteError{call: call, msg: r.Err, permanent: r.Permanent})
	if r.Permanent {
		err = op.Permanent(err)
	}
	return err
}

func callOf(err error) uint64 {
	var re *remoteError
	if errors.As(err, &re) {
		return re.call
	}
	return 0
}
