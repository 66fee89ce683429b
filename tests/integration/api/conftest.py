"""Fixtures of the API tests."""

import pytest

from tests.support.api import TopicReader


@pytest.fixture
def events_topic(settings):
    """What the test produces to its events topic from now on."""
    reader = TopicReader(settings, settings.topics.events)
    yield reader
    reader.close()
