"""The batch indexer: the run's plan (``planning``), the market's daily tables (``tables``,
``appending``, ``settling``), one ticker from its history (``per_ticker``, bounded by
``deadline``), the summary and run record (``summary``), the run's steps (``steps``) and the run
itself (``runner``)."""
