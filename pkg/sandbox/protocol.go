package sandbox

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"

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
	kindSchema kind = "schema" // parent → worker: open a ParameterSchema session
	kindParams kind = "params" // parent → worker: open a ValidateParameters session
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

	// Schema is the definition of a ParameterSchema session, Params the
	// checks of a ValidateParameters session.
	Schema *eval.Definition      `json:"schema,omitempty"`
	Params []eval.ParameterCheck `json:"params,omitempty"`
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
	// Parameters are Go data, or JSON text in ParametersJSON when the
	// caller gave them so.
	Parameters     any            `json:"params,omitempty"`
	ParametersJSON []byte         `json:"paramsJSON,omitempty"`
	Context        map[string]any `json:"context,omitempty"`
	Step           op.Step        `json:"step"`
	Outputs        []string       `json:"outputs,omitempty"`
	Data           bool           `json:"data,omitempty"`
}

type condRequest struct {
	Expr  string         `json:"expr"`
	Scope map[string]any `json:"scope"`
}

type opCall struct {
	Name  op.Name  `json:"name"`
	Path  string   `json:"path"`
	Class op.Class `json:"class"`
	// Params is the op's params struct, encoded.
	Params cbor.RawMessage `json:"params"`
}

type opResult struct {
	Returns   any      `json:"returns,omitempty"`
	Stop      *op.Stop `json:"stop,omitempty"`
	Message   string   `json:"message,omitempty"`
	Err       string   `json:"err,omitempty"`
	Permanent bool     `json:"permanent,omitempty"`
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
	// Schema is a ParameterSchema's JSON; Problems a ValidateParameters'.
	Schema   []byte                  `json:"schema,omitempty"`
	Problems []eval.ParameterProblem `json:"problems,omitempty"`
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

// conn is one end of the protocol: a buffered writer and a decoder over
// a buffered reader. Send is safe for concurrent use; Receive is not.
type conn struct {
	mu  sync.Mutex
	bw  *bufio.Writer
	dec *cbor.Decoder
}

// Messages are CBOR (RFC 8949): several times cheaper to encode and
// decode than JSON, and its integers stay integers. Decoded into Go
// interfaces, maps are map[string]any and integers int64 (big ones
// *big.Int), as CUE's own decoding gives them.
var (
	encMode = mustEncMode(cbor.EncOptions{Time: cbor.TimeRFC3339Nano})
	decMode = mustDecMode(cbor.DecOptions{
		DefaultMapType:   reflect.TypeOf(map[string]any(nil)),
		IntDec:           cbor.IntDecConvertSignedOrBigInt,
		BigIntDec:        cbor.BigIntDecodePointer,
		MaxNestedLevels:  256,
		MaxArrayElements: 1 << 24,
		MaxMapPairs:      1 << 24,
	})
)

func mustEncMode(o cbor.EncOptions) cbor.EncMode {
	m, err := o.EncMode()
	if err != nil {
		panic(err)
	}
	return m
}

func mustDecMode(o cbor.DecOptions) cbor.DecMode {
	m, err := o.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

func newConn(r io.Reader, w io.Writer) *conn {
	bw := bufio.NewWriterSize(w, 64<<10)
	return &conn{bw: bw, dec: decMode.NewDecoder(bufio.NewReaderSize(r, 64<<10))}
}

// encodeError is a message that could not be encoded: nothing was
// written, and the stream is as good as before.
type encodeError struct{ err error }

func (e *encodeError) Error() string { return "encoding a message: " + e.err.Error() }
func (e *encodeError) Unwrap() error { return e.err }

// send writes m whole, or nothing when it does not encode.
func (c *conn) send(m *message) error {
	b, err := encode(m)
	if err != nil {
		return err
	}
	return c.write(b)
}

func encode(m *message) ([]byte, error) {
	b, err := encMode.Marshal(m)
	if err != nil {
		return nil, &encodeError{err}
	}
	return b, nil
}

// write writes an encoded message.
func (c *conn) write(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.bw.Write(b); err != nil {
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

// decodeParams decodes an op call's encoded parameters into the params
// struct of o.
func decodeParams(o op.Op, raw cbor.RawMessage) (any, error) {
	params := o.NewParams()
	if err := decMode.Unmarshal(raw, params); err != nil {
		return nil, err
	}
	return params, nil
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
