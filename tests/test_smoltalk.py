"""tasks/smoltalk.py: SmolTalk's messages as in the source, with and without a system message."""

import pytest

from nanotasks.tasks.smoltalk import SmolTalk
from tests.conftest import SAMPLE
from tests.helpers import source_rows, stored


@pytest.mark.parametrize("split", ["train", "test"])
def test_smoltalk_messages_as_in_the_source(sample_db, split):
    task = SmolTalk(split, db=sample_db)
    rows = source_rows(SAMPLE, "HuggingFaceTB/smol-smoltalk", "data", split)
    assert task.eval_type == "generative" and len(task) == len(rows)
    for example, row in zip(task, rows, strict=True):
        assert example == {
            "messages": [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
        }


def test_smoltalk_with_and_without_system_message(sample_db):
    train = stored(sample_db, ("smoltalk", "default", "train"))
    roles = [[m["role"] for m in c["messages"]] for c in train]
    assert ["system", "user", "assistant"] in roles and ["user", "assistant"] in roles
    assert any(len(r) > 3 for r in roles)  # multi-turn
    assert all(list(m) == ["role", "content"] for c in train for m in c["messages"])
    test = stored(sample_db, ("smoltalk", "default", "test"))
    assert any("おはようございます" in m["content"] for c in test for m in c["messages"])
