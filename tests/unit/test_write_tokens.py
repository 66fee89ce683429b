"""The write token every guarded writer of the serving store stores: the API and the streaming job."""

from datetime import UTC, datetime, timedelta

from recsys_core.documents import next_write_token

NOW = datetime(2026, 11, 22, 12, 0, 0, 123_456, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def test_a_token_is_now_in_milliseconds():
    assert next_write_token(None, NOW) == NOW.replace(microsecond=123_000)
    assert next_write_token(NOW - timedelta(seconds=1), NOW) == NOW.replace(microsecond=123_000)


def test_a_token_always_moves_past_the_previous_one():
    same_millisecond = NOW.replace(microsecond=123_000)
    assert next_write_token(same_millisecond, NOW) == same_millisecond + MS
    ahead = NOW + timedelta(seconds=5)  # a clock that stepped back since the previous write
    assert next_write_token(ahead, NOW) == ahead + MS


def test_the_streaming_jobs_tokens_follow_the_same_rule():
    from streaming.store import Tokens

    tokens = Tokens()
    drawn = [tokens.next() for _ in range(50)]
    assert drawn == sorted(set(drawn)) and all(t.microsecond % 1000 == 0 for t in drawn)


def test_a_document_written_by_another_worker_gets_a_token_past_its_own():
    """Each Python worker of the job draws its own tokens: a write still moves past the stored one."""
    from streaming.store import token_after

    stamp = NOW.replace(microsecond=123_000)
    assert token_after(None, "updated_at", stamp) == stamp
    assert token_after({"updated_at": stamp - MS}, "updated_at", stamp) == stamp
    assert token_after({"updated_at": stamp}, "updated_at", stamp) == stamp + MS
    assert token_after({"updated_at": stamp + 5 * MS}, "updated_at", stamp) == stamp + 6 * MS
