// Added to FerretDB's internal/handler/sjson package by recsys_stack/provision.py, and run
// there before FerretDB is built.

package sjson

import (
	"math"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

var sampleStrings = []string{
	"", "p42", "ключ", "日本語", "emoji 😀", `quote " inside`, `back\slash`, "tab\there", "new\nline",
	"\x01control", "<html>&amp;", "\u2028separator", "ends with space ",
}

func randomString(r *rand.Rand) string {
	if r.Intn(3) == 0 {
		return sampleStrings[r.Intn(len(sampleStrings))]
	}

	var sb strings.Builder
	for i := r.Intn(12); i > 0; i-- {
		sb.WriteByte(byte('a' + r.Intn(26)))
	}

	return sb.String()
}

func randomKey(r *rand.Rand, nested bool) string {
	keys := []string{"_id", "user_id", "items", "score", "product_id", "viewed_at", "a", "b.c", "$x", "ключ"}
	if nested {
		keys = append(keys, `with "quote"`, `with \ backslash`)
	}

	return keys[r.Intn(len(keys))] + strings.Repeat("k", r.Intn(2))
}

func randomScalar(r *rand.Rand) any {
	doubles := []float64{
		0, math.Copysign(0, -1), 1, -1.5, 3.0, 1e300, -1e-300, math.MaxFloat64, math.SmallestNonzeroFloat64,
		r.NormFloat64() * 1e6, r.Float64(), float64(r.Int63()),
	}

	switch r.Intn(12) {
	case 0:
		return doubles[r.Intn(len(doubles))]
	case 1, 2:
		return randomString(r)
	case 3:
		return []int32{0, 1, -1, math.MaxInt32, math.MinInt32, r.Int31()}[r.Intn(6)]
	case 4:
		return []int64{0, -1, math.MaxInt64, math.MinInt64, r.Int63()}[r.Intn(5)]
	case 5:
		return r.Intn(2) == 0
	case 6:
		return time.UnixMilli(r.Int63n(4_000_000_000_000) - 1_000_000_000_000)
	case 7:
		return types.Null
	case 8:
		return types.NewObjectID()
	case 9:
		return types.Binary{Subtype: types.BinaryUser, B: []byte(randomString(r))}
	case 10:
		return types.Regex{Pattern: randomString(r), Options: "i"}
	default:
		return types.Timestamp(r.Uint64() >> 1)
	}
}

func randomValue(r *rand.Rand, depth int) any {
	if depth < 3 {
		switch r.Intn(6) {
		case 0:
			return randomDocument(r, depth+1, true)
		case 1:
			a := types.MakeArray(0)
			for i := r.Intn(6); i > 0; i-- {
				a.Append(randomValue(r, depth+1))
			}

			return a
		}
	}

	return randomScalar(r)
}

func randomDocument(r *rand.Rand, depth int, nested bool) *types.Document {
	d := must.NotFail(types.NewDocument())
	for i := r.Intn(7); i > 0; i-- {
		d.Set(randomKey(r, nested), randomValue(r, depth))
	}

	return d
}

// A recommendations document as the speed layer writes it.
func recommendationsDocument(r *rand.Rand) *types.Document {
	items := types.MakeArray(20)
	for i := 0; i < 20; i++ {
		items.Append(must.NotFail(types.NewDocument("product_id", randomString(r), "score", r.Float64())))
	}

	return must.NotFail(types.NewDocument(
		"_id", "u1", "user_id", "u1", "items", items, "strategy", "realtime", "model_version", types.Null,
		"computed_at", time.UnixMilli(r.Int63n(2_000_000_000_000)), "last_event_ts", time.UnixMilli(1),
	))
}

func TestFastUnmarshalMatchesFerretDB(t *testing.T) {
	t.Parallel()

	r := rand.New(rand.NewSource(1))

	for i := 0; i < 20000; i++ {
		doc := randomDocument(r, 0, false)
		if i%10 == 0 {
			doc = recommendationsDocument(r)
		}

		b, err := Marshal(doc)
		require.NoError(t, err)

		expected, err := unmarshalOriginal(b)
		require.NoError(t, err, "%s", b)

		actual, ok := fastUnmarshal(b)
		require.True(t, ok, "%s", b)
		require.Equal(t, expected, actual, "%s", b)

		// Damaged documents: the fast path may decline, but whatever it accepts FerretDB accepts
		// the same way.
		for j := 0; j < 4; j++ {
			damaged := damage(r, b)

			actual, ok := fastUnmarshal(damaged)
			if !ok {
				continue
			}

			expected, err := unmarshalOriginal(damaged)
			require.NoError(t, err, "fast path accepted what FerretDB rejects: %s", damaged)
			require.Equal(t, expected, actual, "%s", damaged)
		}
	}
}

func damage(r *rand.Rand, b []byte) []byte {
	d := append([]byte(nil), b...)

	switch r.Intn(4) {
	case 0:
		return d[:r.Intn(len(d))]
	case 1:
		return append(d, " "...)
	case 2:
		d[r.Intn(len(d))] = `{}[]",:0 -.e\x`[r.Intn(14)]
		return d
	default:
		i := r.Intn(len(d))
		return append(d[:i], d[i+1:]...)
	}
}

func TestFastUnmarshalDeclinesWhatFerretDBRejects(t *testing.T) {
	t.Parallel()

	for _, data := range []string{
		`{"$s":{"p":{"a":{"t":"string"}},"$k":["a"]},"a":"x"} `,
		`{"$s":{"p":{"a":{"t":"int"}},"$k":["a"]},"a":2147483648}`,
		`{"$s":{"p":{"a":{"t":"long"}},"$k":["a"]},"a":01}`,
		`{"$s":{"p":{"a":{"t":"double"}},"$k":["a"]},"a":NaN}`,
		`{"$s":{"p":{"a":{"t":"array","i":[{"t":"int"}]}},"$k":["a"]},"a":[1,2]}`,
		`{"$s":{"p":{"a":{"t":"string"}},"$k":["a"],"x":1},"a":"x"}`,
		`{"$s":{"p":{"a":{"t":"string"}},"$k":["a"]}}`,
	} {
		_, ok := fastUnmarshal([]byte(data))
		require.False(t, ok, data)

		_, err := Unmarshal([]byte(data))
		require.Error(t, err, data)
	}
}
