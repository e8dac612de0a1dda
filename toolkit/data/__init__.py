"""Labelled tasks, user data files and the pretraining corpus.

``load_task`` reads one of the packaged TASKS, ``load_file`` a user's CSV,
TSV or JSONL; both return a TaskData split the same seeded, stratified,
deduplicated way. ``pretraining_texts`` is the unlabelled corpus, with every
test text of the packaged tasks left out.
"""

from embbert.data.corpus import pretraining_texts
from embbert.data.examples import Example, TaskData
from embbert.data.files import load_file
from embbert.data.tasks import TASKS, load_task

__all__ = ["Example", "TaskData", "TASKS", "load_task", "load_file", "pretraining_texts"]
