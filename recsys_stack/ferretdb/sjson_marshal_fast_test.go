// Added to FerretDB's internal/handler/sjson package by recsys_stack/provision.py, and run
// there before FerretDB is built.

package sjson

import (
	"math"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

func TestFastMarshalMatchesFerretDB(t *testing.T) {
	t.Parallel()

	r := rand.New(rand.NewSource(2))

	for i := 0; i < 20000; i++ {
		doc := randomDocument(r, 0, i%2 == 0) // odd: top-level keys FerretDB writes unescaped
		if i%10 == 0 {
			doc = recommendationsDocument(r)
		}

		expected, err := marshalOriginal(doc)
		require.NoError(t, err)

		actual, err := Marshal(doc)
		require.NoError(t, err)
		require.Equal(t, string(expected), string(actual))
	}
}

func TestFastMarshalFailsWhereFerretDBFails(t *testing.T) {
	t.Parallel()

	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		nested := must.NotFail(types.NewDocument("items", must.NotFail(types.NewArray(1.5, bad))))
		for _, doc := range []*types.Document{must.NotFail(types.NewDocument("v", bad)), nested} {
			_, expected := marshalOriginal(doc)
			require.Error(t, expected)

			_, err := Marshal(doc)
			require.Error(t, err)
		}
	}
}

func BenchmarkMarshalRecommendations(b *testing.B) {
	doc := recommendationsDocument(rand.New(rand.NewSource(3)))

	b.Run("fast", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_ = must.NotFail(Marshal(doc))
		}
	})
	b.Run("ferretdb", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_ = must.NotFail(marshalOriginal(doc))
		}
	})
}
