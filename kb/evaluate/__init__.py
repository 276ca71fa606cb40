"""Retrieval evaluation (``kb eval``): a QRELS file of documents and judged queries in, a
report of Recall, MRR, graded nDCG, precision@5 and crowding per direction out.

- ``qrels.py``: the file format (records or PDFs as documents; binary or graded relevance);
- ``metrics.py``: the ranking metrics;
- ``run.py``: ``evaluate`` (a throwaway library, every query in every mode);
- ``report.py``: ``EvalReport`` and its Markdown and JSON forms.
"""

from kb.evaluate.metrics import mrr_at, ndcg_at, precision_at, recall_at
from kb.evaluate.qrels import Qrels, Query, read_qrels
from kb.evaluate.report import Crowding, EvalReport, FloorCheck, ModeReport, Row
from kb.evaluate.run import crowding, evaluate

__all__ = [
    "Crowding",
    "EvalReport",
    "FloorCheck",
    "ModeReport",
    "Qrels",
    "Query",
    "Row",
    "crowding",
    "evaluate",
    "mrr_at",
    "ndcg_at",
    "precision_at",
    "read_qrels",
    "recall_at",
]
