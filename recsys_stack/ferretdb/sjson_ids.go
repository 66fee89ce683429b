package sjson

import (
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// MarshalIDsForIndex encodes the operand of `{_id: {$in: [...]}}` as the backends' unique `_id`
// indexes hold each value, so that they can look the documents up there: strings and ObjectIDs
// only, at most 10,000. Anything else gives nil, and the handler filters on its own.
func MarshalIDsForIndex(v any) []any {
	values, ok := v.(*types.Array)
	if !ok || values.Len() == 0 || values.Len() > 10000 {
		return nil
	}

	ids := make([]any, 0, values.Len())

	for i := 0; i < values.Len(); i++ {
		value := must.NotFail(values.Get(i))
		switch value.(type) {
		case string, types.ObjectID:
			ids = append(ids, string(must.NotFail(MarshalSingleValue(value))))
		default:
			return nil
		}
	}

	return ids
}
