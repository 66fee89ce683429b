// Added to FerretDB's internal/handler/sjson package by recsys_stack/provision.py.

package sjson

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// Unmarshal decodes the top-level document.
//
// Documents as FerretDB writes them (no escapes in keys, no duplicate keys) take one pass over
// the bytes with a schema parsed once per distinct schema; anything else, errors included,
// is decoded by unmarshalOriginal, FerretDB's decoder, so results and errors are unchanged.
// FerretDB's decoder starts an encoding/json decoder for every nested value, scalars
// included: for a document of 20 sub-documents that was a quarter of the server's CPU.
func Unmarshal(data []byte) (*types.Document, error) {
	if doc, ok := fastUnmarshal(data); ok {
		return doc, nil
	}

	return unmarshalOriginal(data)
}

// schemaCacheSize bounds the schemas kept; past it the cache starts over.
const schemaCacheSize = 4096

var schemaCache = struct {
	sync.RWMutex
	m map[string]*schema
}{m: make(map[string]*schema)}

// cachedSchema parses the `$s` value as unmarshalOriginal does, once per distinct value.
// Parsed schemas are only read, never changed, so they are shared.
func cachedSchema(raw []byte) (*schema, bool) {
	schemaCache.RLock()
	sch, ok := schemaCache.m[string(raw)]
	schemaCache.RUnlock()

	if ok {
		return sch, true
	}

	sch = new(schema)
	if err := decodeSchema(raw, sch); err != nil {
		return nil, false
	}

	schemaCache.Lock()
	if len(schemaCache.m) >= schemaCacheSize {
		schemaCache.m = make(map[string]*schema)
	}
	schemaCache.m[string(raw)] = sch
	schemaCache.Unlock()

	return sch, true
}

// decodeSchema decodes a `$s` value exactly as unmarshalOriginal does.
func decodeSchema(raw []byte, sch *schema) error {
	r := bytes.NewReader(raw)
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()

	if err := dec.Decode(sch); err != nil {
		return err
	}

	return checkConsumed(dec, r)
}

// member is one key and its raw value in a JSON object.
type member struct {
	key   string
	value []byte
}

func fastUnmarshal(data []byte) (*types.Document, bool) {
	members, ok := scanObject(data)
	if !ok {
		return nil, false
	}

	var sch *schema

	fields := make([]member, 0, len(members))

	for _, m := range members {
		if m.key == "$s" {
			if sch != nil {
				return nil, false
			}

			if sch, ok = cachedSchema(m.value); !ok {
				return nil, false
			}

			continue
		}

		fields = append(fields, m)
	}

	if sch == nil || len(sch.Keys) != len(fields) {
		return nil, false
	}

	return fastFields(fields, sch)
}

// fastFields builds a document of `fields` in the order of the schema's keys.
func fastFields(fields []member, sch *schema) (*types.Document, bool) {
	d := must.NotFail(types.NewDocument())

	for _, key := range sch.Keys {
		raw, ok := lookup(fields, key)
		if !ok {
			return nil, false
		}

		v, ok := fastValue(raw, sch.Properties[key])
		if !ok {
			return nil, false
		}

		d.Set(key, v)
	}

	return d, true
}

// lookup returns the value of the only member named key.
func lookup(fields []member, key string) ([]byte, bool) {
	var found []byte

	n := 0

	for _, f := range fields {
		if f.key == key {
			found = f.value
			n++
		}
	}

	return found, n == 1
}

// fastValue decodes one value by its schema; it reports false where FerretDB's decoder must decide.
func fastValue(raw []byte, sch *elem) (any, bool) {
	if sch == nil || string(raw) == "null" {
		return slowValue(raw, sch)
	}

	switch sch.Type {
	case elemTypeObject:
		members, ok := scanObject(raw)
		if !ok || len(members) == 0 || sch.Schema == nil || len(sch.Schema.Keys) != len(members) {
			return slowValue(raw, sch)
		}

		d, ok := fastFields(members, sch.Schema)
		if !ok {
			return nil, false
		}

		return d, true

	case elemTypeArray:
		items, ok := scanArray(raw)
		if !ok || len(items) == 0 || len(items) != len(sch.Items) {
			return slowValue(raw, sch)
		}

		a := types.MakeArray(len(items))

		for i, item := range items {
			v, ok := fastValue(item, sch.Items[i])
			if !ok {
				return nil, false
			}

			a.Append(v)
		}

		return a, true

	case elemTypeString:
		if s, ok := plainString(raw); ok {
			return s, true
		}

	case elemTypeDouble:
		if isJSONNumber(raw) {
			if f, err := strconv.ParseFloat(string(raw), 64); err == nil {
				return f, true
			}
		}

	case elemTypeInt:
		if isJSONInteger(raw) {
			if i, err := strconv.ParseInt(string(raw), 10, 32); err == nil {
				return int32(i), true
			}
		}

	case elemTypeLong:
		if isJSONInteger(raw) {
			if i, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
				return i, true
			}
		}

	case elemTypeDate:
		if isJSONInteger(raw) {
			if ms, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
				return time.UnixMilli(ms), true
			}
		}

	case elemTypeBool:
		switch string(raw) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}

	return slowValue(raw, sch)
}

// slowValue decodes one value with FerretDB's own code.
func slowValue(raw []byte, sch *elem) (any, bool) {
	v, err := unmarshalSingleValue(raw, sch)
	return v, err == nil
}

// plainString returns the contents of a JSON string without escapes or control characters.
func plainString(raw []byte) (string, bool) {
	n := len(raw)
	if n < 2 || raw[0] != '"' || raw[n-1] != '"' {
		return "", false
	}

	body := raw[1 : n-1]

	for _, c := range body {
		if c == '\\' || c == '"' || c < 0x20 {
			return "", false
		}
	}

	if !utf8.Valid(body) {
		return "", false
	}

	return string(body), true
}

// isJSONInteger matches -?(0|[1-9][0-9]*).
func isJSONInteger(raw []byte) bool {
	if len(raw) > 0 && raw[0] == '-' {
		raw = raw[1:]
	}

	if len(raw) == 0 || (raw[0] == '0' && len(raw) > 1) {
		return false
	}

	for _, c := range raw {
		if c < '0' || c > '9' {
			return false
		}
	}

	return true
}

// isJSONNumber matches JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func isJSONNumber(raw []byte) bool {
	i := 0
	if i < len(raw) && raw[i] == '-' {
		i++
	}

	digits := func() int {
		start := i
		for i < len(raw) && raw[i] >= '0' && raw[i] <= '9' {
			i++
		}

		return i - start
	}

	start := i
	if n := digits(); n == 0 || (n > 1 && raw[start] == '0') {
		return false
	}

	if i < len(raw) && raw[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}

	if i < len(raw) && (raw[i] == 'e' || raw[i] == 'E') {
		i++
		if i < len(raw) && (raw[i] == '+' || raw[i] == '-') {
			i++
		}

		if digits() == 0 {
			return false
		}
	}

	return i == len(raw)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}

	return i
}

// scanString returns the index just past the string starting at b[i], and whether it has escapes.
func scanString(b []byte, i int) (int, bool, bool) {
	escaped := false

	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '\\':
			escaped = true
			j++
		case c == '"':
			return j + 1, escaped, true
		case c < 0x20:
			return 0, false, false
		}
	}

	return 0, false, false
}

// skipValue returns the index just past the value starting at b[i].
// Scalars are only delimited here; they are checked when decoded.
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}

	switch b[i] {
	case '"':
		end, _, ok := scanString(b, i)
		return end, ok

	case '{', '[':
		depth := 0

		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _, ok := scanString(b, j)
				if !ok {
					return 0, false
				}

				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}

		return 0, false

	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' &&
			b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
			j++
		}

		return j, j > i
	}
}

// scanList walks a JSON object or array from its `open` byte to the matching `close`, calling
// element at the start of each member or item; element returns the index just past it. It
// reports false for anything after the closing byte (FerretDB's decoder rejects trailing bytes,
// even spaces).
func scanList(b []byte, open, close byte, element func(i int) (int, bool)) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != open {
		return false
	}

	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == close {
		return i+1 == len(b)
	}

	for {
		end, ok := element(i)
		if !ok {
			return false
		}

		i = skipSpace(b, end)
		if i >= len(b) {
			return false
		}

		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case close:
			return i+1 == len(b)
		default:
			return false
		}
	}
}

// scanObject splits a JSON object into members.
func scanObject(b []byte) ([]member, bool) {
	var members []member

	ok := scanList(b, '{', '}', func(i int) (int, bool) {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}

		end, escaped, ok := scanString(b, i)
		if !ok {
			return 0, false
		}

		key := string(b[i+1 : end-1])
		if escaped || !utf8.Valid(b[i+1:end-1]) {
			if json.Unmarshal(b[i:end], &key) != nil { // as encoding/json decodes a map key
				return 0, false
			}
		}

		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}

		i = skipSpace(b, i+1)

		end, ok = skipValue(b, i)
		if ok {
			members = append(members, member{key: key, value: b[i:end]})
		}

		return end, ok
	})

	return members, ok
}

// scanArray splits a JSON array into its items.
func scanArray(b []byte) ([][]byte, bool) {
	var items [][]byte

	ok := scanList(b, '[', ']', func(i int) (int, bool) {
		end, ok := skipValue(b, i)
		if ok {
			items = append(items, b[i:end])
		}

		return end, ok
	})

	return items, ok
}
