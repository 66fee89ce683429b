// Added to FerretDB's internal/handler/sjson package by recsys_stack/provision.py.
//
// Marshal encodes a document into the same bytes as FerretDB's encoder (marshalOriginal), in
// two walks over the document that append to one buffer each, instead of a bytes.Buffer and an
// encoding/json call for every value and every key. Whatever it does not encode byte for byte
// the same way by itself (binary data, regular expressions, strings that need escaping, doubles
// JSON cannot hold) goes through FerretDB's own code, for that value or for the whole document.

package sjson

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// errDeclined: the fast encoder leaves the document to marshalOriginal.
var errDeclined = errors.New("sjson: left to FerretDB's encoder")

// Marshal encodes given document fields and set its schema in the field $s.
func Marshal(d *types.Document) ([]byte, error) {
	if d == nil {
		panic("v is nil")
	}

	schema, err := appendDocumentSchema(make([]byte, 0, 256), d)
	if err == nil {
		out := make([]byte, 0, len(schema)+512)
		out = append(out, `{"$s":`...)
		out = append(out, schema...)

		keys, values := d.Keys(), d.Values()
		for i, key := range keys {
			out = append(out, ',', '"')
			out = append(out, key...) // written as is, as FerretDB does
			out = append(out, '"', ':')

			if out, err = appendValue(out, values[i]); err != nil {
				break
			}
		}

		if err == nil {
			return append(out, '}'), nil
		}
	}

	if !errors.Is(err, errDeclined) {
		return nil, lazyerrors.Error(err)
	}

	return marshalOriginal(d)
}

// appendDocumentSchema appends what marshalSchemaForDoc returns.
func appendDocumentSchema(b []byte, d *types.Document) ([]byte, error) {
	keys := d.Keys()
	if len(keys) == 0 {
		return append(b, "{}"...), nil
	}

	values := d.Values()
	b = append(b, `{"p":{`...)

	var err error
	for i, key := range keys {
		if i > 0 {
			b = append(b, ',')
		}

		b = appendString(b, key)
		b = append(b, ':')

		if b, err = appendElemSchema(b, values[i]); err != nil {
			return nil, err
		}
	}

	b = append(b, `},"$k":[`...)

	for i, key := range keys {
		if i > 0 {
			b = append(b, ',')
		}

		b = appendString(b, key)
	}

	return append(b, "]}"...), nil
}

// appendElemSchema appends what marshalElemForSingleValue returns.
func appendElemSchema(b []byte, value any) ([]byte, error) {
	switch v := value.(type) {
	case *types.Document:
		b = append(b, `{"t":"object","$s":`...)

		b, err := appendDocumentSchema(b, v)
		if err != nil {
			return nil, err
		}

		return append(b, '}'), nil

	case *types.Array:
		b = append(b, `{"t":"array","i":[`...)

		var err error
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				b = append(b, ',')
			}

			if b, err = appendElemSchema(b, must.NotFail(v.Get(i))); err != nil {
				return nil, err
			}
		}

		return append(b, "]}"...), nil

	case float64:
		return append(b, `{"t":"double"}`...), nil
	case string:
		return append(b, `{"t":"string"}`...), nil
	case types.ObjectID:
		return append(b, `{"t":"objectId"}`...), nil
	case bool:
		return append(b, `{"t":"bool"}`...), nil
	case time.Time:
		return append(b, `{"t":"date"}`...), nil
	case types.NullType:
		return append(b, `{"t":"null"}`...), nil
	case int32:
		return append(b, `{"t":"int"}`...), nil
	case types.Timestamp:
		return append(b, `{"t":"timestamp"}`...), nil
	case int64:
		return append(b, `{"t":"long"}`...), nil
	}

	elem, err := marshalElemForSingleValue(value)
	if err != nil {
		return nil, err
	}

	return append(b, elem...), nil
}

// appendValue appends what toSJSON(value).MarshalJSON() returns.
func appendValue(b []byte, value any) ([]byte, error) {
	var err error

	switch v := value.(type) {
	case *types.Document:
		b = append(b, '{')

		keys, values := v.Keys(), v.Values()
		for i, key := range keys {
			if i > 0 {
				b = append(b, ',')
			}

			b = appendString(b, key)
			b = append(b, ':')

			if b, err = appendValue(b, values[i]); err != nil {
				return nil, err
			}
		}

		return append(b, '}'), nil

	case *types.Array:
		b = append(b, '[')

		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				b = append(b, ',')
			}

			if b, err = appendValue(b, must.NotFail(v.Get(i))); err != nil {
				return nil, err
			}
		}

		return append(b, ']'), nil

	case float64:
		return appendFloat(b, v)
	case string:
		return appendString(b, v), nil
	case types.ObjectID:
		b = append(b, '"')
		b = hex.AppendEncode(b, v[:])

		return append(b, '"'), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case time.Time:
		return strconv.AppendInt(b, v.UnixMilli(), 10), nil
	case types.NullType:
		return append(b, "null"...), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case types.Timestamp:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	}

	encoded, err := MarshalSingleValue(value)
	if err != nil {
		return nil, err
	}

	return append(b, encoded...), nil
}

// appendFloat appends a double as encoding/json does; it declines NaN and infinities (an error there).
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, errDeclined
	}

	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}

	b = strconv.AppendFloat(b, f, format, -1, 64)

	if format == 'e' { // clean up e-09 to e-9, as encoding/json does
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}

	return b, nil
}

// appendString appends a string as encoding/json does: printable ASCII that needs no escape is
// copied, anything else goes through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return append(b, must.NotFail(json.Marshal(s))...)
		}
	}

	b = append(b, '"')
	b = append(b, s...)

	return append(b, '"')
}
