// Added to FerretDB 1.24 by recsys (see recsys_stack/provision.py).

package handler

import (
	"context"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/handler/common"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// updateBatchSize bounds how many statements one batch holds.
const updateBatchSize = 256

// updateBatch collects the writes of consecutive statements of one `update` command that each
// address a single document by `_id`, and applies them in one SQLite transaction per kind
// (inserts, then updates) instead of one transaction per statement: a commit rewrites the
// pages it touched, so many small ones cost most of the time of a bulk replace. The documents
// those statements read are fetched together, with one `_id IN (...)` query.
//
// A statement only joins the batch when its `_id` is not already in it, so every statement
// still reads what the statements before it wrote: writes to other documents cannot change what
// a query for this `_id` finds. Other statements run as before, after the batch is applied.
type updateBatch struct {
	backends.Collection

	ids      map[any]struct{}        // of the statements in the batch
	writes   []batchedWrite          // their writes, in statement order
	fetched  map[any]*types.Document // what the statements ahead will read, by `_id` (nil: none stored)
	prefetch bool                    // fetch ahead (not when pushdown is disabled: it would scan)
}

type batchedWrite struct {
	insert bool
	doc    *types.Document
}

// batchableID returns the `_id` a statement addresses, if it addresses exactly one document
// by a string or ObjectID `_id`.
func batchableID(u *common.Update) (any, bool) {
	if u.Filter == nil {
		return nil, false
	}

	id, err := u.Filter.Get("_id")
	if err != nil {
		return nil, false
	}

	switch id.(type) {
	case string, types.ObjectID:
		return id, true
	default:
		return nil, false
	}
}

// updateDocument runs the statements of an `update` command, batching their writes, and applies
// what is still batched when they end, also when a statement failed (its error is returned).
func (h *Handler) updateDocument(ctx context.Context, params *common.UpdateParams) (int32, int32, *types.Array, error) {
	batch := updateBatch{prefetch: !h.DisablePushdown}

	matched, modified, upserted, err := h.updateStatements(ctx, params, &batch)
	if flushErr := batch.flush(ctx); err == nil && flushErr != nil {
		return 0, 0, nil, flushErr
	}

	return matched, modified, upserted, err
}

// target returns the collection statement i should read and write through: the batch when it
// addresses one document by `_id`, else c itself. It first applies the batch if the statement
// may read what the batch holds, or the batch is full.
func (b *updateBatch) target(ctx context.Context, c backends.Collection, updates []common.Update, i int) (backends.Collection, error) {
	id, ok := batchableID(&updates[i])
	if _, seen := b.ids[id]; !ok || seen || len(b.ids) >= updateBatchSize {
		if err := b.flush(ctx); err != nil {
			return nil, err
		}
	}

	if !ok {
		return c, nil
	}

	if b.ids == nil {
		b.ids = map[any]struct{}{}
	}

	b.ids[id] = struct{}{}
	b.Collection = c

	if _, known := b.fetched[id]; !known && b.prefetch {
		if err := b.fetch(ctx, updates[i:]); err != nil {
			return nil, err
		}
	}

	return b, nil
}

// fetch reads the documents of the statements ahead that will join this batch.
func (b *updateBatch) fetch(ctx context.Context, ahead []common.Update) error {
	b.fetched = map[any]*types.Document{}
	ids := types.MakeArray(0)

	for j := range ahead {
		id, ok := batchableID(&ahead[j])
		_, seen := b.fetched[id]
		_, batched := b.ids[id]

		if !ok || seen || (j > 0 && batched) || len(b.ids)-1+ids.Len() >= updateBatchSize {
			break
		}

		b.fetched[id] = nil
		ids.Append(id)
	}

	res, err := b.Collection.Query(ctx, &backends.QueryParams{
		Filter: must.NotFail(types.NewDocument("_id", must.NotFail(types.NewDocument("$in", ids)))),
	})
	if err != nil {
		return lazyerrors.Error(err)
	}

	docs, err := iterator.ConsumeValues(res.Iter)
	res.Iter.Close()

	if err != nil {
		return lazyerrors.Error(err)
	}

	for _, doc := range docs {
		id, _ := doc.Get("_id")
		if _, wanted := b.fetched[id]; wanted {
			b.fetched[id] = doc
		}
	}

	return nil
}

// Query implements backends.Collection interface: the document of the filter's `_id`, as fetched.
// The handler applies the statement's whole filter to it.
func (b *updateBatch) Query(ctx context.Context, params *backends.QueryParams) (*backends.QueryResult, error) {
	var id any
	if params.Filter != nil {
		id, _ = params.Filter.Get("_id")
	}

	doc, known := b.fetched[id]
	if !known {
		return b.Collection.Query(ctx, params)
	}

	delete(b.fetched, id)

	var docs []*types.Document
	if doc != nil {
		docs = append(docs, doc)
	}

	return &backends.QueryResult{Iter: iterator.Values(iterator.ForSlice(docs))}, nil
}

// InsertAll implements backends.Collection interface by deferring the insert to flush.
func (b *updateBatch) InsertAll(_ context.Context, params *backends.InsertAllParams) (*backends.InsertAllResult, error) {
	for _, doc := range params.Docs {
		b.writes = append(b.writes, batchedWrite{insert: true, doc: doc})
	}

	return new(backends.InsertAllResult), nil
}

// UpdateAll implements backends.Collection interface by deferring the update to flush.
func (b *updateBatch) UpdateAll(_ context.Context, params *backends.UpdateAllParams) (*backends.UpdateAllResult, error) {
	for _, doc := range params.Docs {
		b.writes = append(b.writes, batchedWrite{doc: doc})
	}

	return &backends.UpdateAllResult{Updated: int32(len(params.Docs))}, nil
}

// flush applies the collected writes: the inserts in one transaction, then the updates in
// another. If a transaction fails, its writes are applied one by one in statement order up to
// the first that fails, whose error is returned, as without the batch.
func (b *updateBatch) flush(ctx context.Context) error {
	writes, c := b.writes, b.Collection
	b.writes, b.ids, b.fetched = nil, nil, nil

	if len(writes) == 0 {
		return nil
	}

	var inserts, updates []*types.Document

	for _, w := range writes {
		if w.insert {
			inserts = append(inserts, w.doc)
		} else {
			updates = append(updates, w.doc)
		}
	}

	if len(inserts) > 0 {
		if _, err := c.InsertAll(ctx, &backends.InsertAllParams{Docs: inserts}); err != nil {
			return writeOneByOne(ctx, c, writes)
		}
	}

	if len(updates) > 0 {
		if _, err := c.UpdateAll(ctx, &backends.UpdateAllParams{Docs: updates}); err != nil {
			var rest []batchedWrite

			for _, w := range writes {
				if !w.insert {
					rest = append(rest, w)
				}
			}

			return writeOneByOne(ctx, c, rest)
		}
	}

	return nil
}

func writeOneByOne(ctx context.Context, c backends.Collection, writes []batchedWrite) error {
	for _, w := range writes {
		var err error
		if w.insert {
			_, err = c.InsertAll(ctx, &backends.InsertAllParams{Docs: []*types.Document{w.doc}})
		} else {
			_, err = c.UpdateAll(ctx, &backends.UpdateAllParams{Docs: []*types.Document{w.doc}})
		}

		if err != nil {
			return lazyerrors.Error(err)
		}
	}

	return nil
}
