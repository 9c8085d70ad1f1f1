package toolset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrUnknownTool: Call was given a name that is not one of Tools() (never defined, or removed by
// the options or the permission ruleset).
var ErrUnknownTool = errors.New("unknown tool")

// ErrInvalidArguments: Call's arguments are not a JSON object, or an argument is missing or of
// the wrong type. It is returned as an *ArgumentError.
var ErrInvalidArguments = errors.New("invalid tool arguments")

// ArgumentError reports arguments a tool cannot use. Its message is meant for the model, which
// can fix the call, e.g. "read_file: offset: must be an integer".
type ArgumentError struct {
	Tool string
	Arg  string // "" when the arguments as a whole are malformed
	Msg  string
}

func (e *ArgumentError) Error() string {
	if e.Arg == "" {
		return fmt.Sprintf("%s: %s", e.Tool, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Tool, e.Arg, e.Msg)
}

// Is makes errors.Is(err, ErrInvalidArguments) true.
func (e *ArgumentError) Is(target error) bool { return target == ErrInvalidArguments }

// args are a tool call's decoded arguments. Decoding is lenient where pydantic's lax mode is (the
// validation upstream's tools get): integers may be integral floats or numeric strings, booleans
// may be "true"/"false" strings, a null optional argument is its default, and unknown arguments
// are ignored.
type args struct {
	tool string
	m    map[string]json.RawMessage
}

func parseArgs(tool string, raw []byte) (args, error) {
	a := args{tool: tool, m: map[string]json.RawMessage{}}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return a, nil
	}
	if raw[0] != '{' {
		return a, &ArgumentError{Tool: tool, Msg: "arguments must be a JSON object"}
	}
	if err := json.Unmarshal(raw, &a.m); err != nil {
		return a, &ArgumentError{Tool: tool, Msg: "arguments are not valid JSON: " + err.Error()}
	}
	return a, nil
}

func (a args) fail(name, msg string) error { return &ArgumentError{Tool: a.tool, Arg: name, Msg: msg} }

// get returns the raw value and whether it is present and not null.
func (a args) get(name string) (json.RawMessage, bool) {
	v, ok := a.m[name]
	if !ok || string(bytes.TrimSpace(v)) == "null" {
		return nil, false
	}
	return v, true
}

func (a args) requiredString(name string) (string, error) {
	v, ok := a.get(name)
	if !ok {
		return "", a.fail(name, "required")
	}
	return a.decodeString(name, v)
}

func (a args) stringOr(name, def string) (string, error) {
	v, ok := a.get(name)
	if !ok {
		return def, nil
	}
	return a.decodeString(name, v)
}

func (a args) optionalString(name string) (*string, error) {
	v, ok := a.get(name)
	if !ok {
		return nil, nil
	}
	s, err := a.decodeString(name, v)
	return &s, err
}

func (a args) decodeString(name string, v json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", a.fail(name, "must be a string")
	}
	return s, nil
}

func (a args) requiredInt(name string) (int, error) {
	v, ok := a.get(name)
	if !ok {
		return 0, a.fail(name, "required")
	}
	return a.decodeInt(name, v)
}

func (a args) intOr(name string, def int) (int, error) {
	v, ok := a.get(name)
	if !ok {
		return def, nil
	}
	return a.decodeInt(name, v)
}

func (a args) optionalInt(name string) (*int, error) {
	v, ok := a.get(name)
	if !ok {
		return nil, nil
	}
	n, err := a.decodeInt(name, v)
	return &n, err
}

func (a args) decodeInt(name string, v json.RawMessage) (int, error) {
	var f float64
	switch v[0] {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return 0, a.fail(name, "must be an integer")
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return 0, a.fail(name, "must be an integer")
		}
		return n, nil
	default:
		if err := json.Unmarshal(v, &f); err != nil {
			return 0, a.fail(name, "must be an integer")
		}
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, a.fail(name, "must be an integer")
	}
	return int(f), nil
}

// optionalNumber decodes a number of any kind (execute's timeout may be fractional).
func (a args) optionalNumber(name string) (*float64, error) {
	v, ok := a.get(name)
	if !ok {
		return nil, nil
	}
	var f float64
	if v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			if f, err = strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return &f, nil
			}
		}
		return nil, a.fail(name, "must be a number")
	}
	if err := json.Unmarshal(v, &f); err != nil {
		return nil, a.fail(name, "must be a number")
	}
	return &f, nil
}

func (a args) boolOr(name string, def bool) (bool, error) {
	v, ok := a.get(name)
	if !ok {
		return def, nil
	}
	var b bool
	if err := json.Unmarshal(v, &b); err == nil {
		return b, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "yes", "on", "1":
			return true, nil
		case "false", "no", "off", "0":
			return false, nil
		}
	}
	var f float64
	if err := json.Unmarshal(v, &f); err == nil && (f == 0 || f == 1) {
		return f == 1, nil
	}
	return false, a.fail(name, "must be a boolean")
}

func (a args) enumOr(name, def string, allowed ...string) (string, error) {
	s, err := a.stringOr(name, def)
	if err != nil {
		return "", err
	}
	for _, v := range allowed {
		if s == v {
			return s, nil
		}
	}
	quoted := make([]string, len(allowed))
	for i, v := range allowed {
		quoted[i] = strconv.Quote(v)
	}
	return "", a.fail(name, "must be one of "+strings.Join(quoted, ", "))
}
