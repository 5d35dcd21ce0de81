"""The cache-aside reader: ``OhlcvCache`` (lookup), a miss fetched and stored (``miss``,
``fill``), frames cut from cached values (``frames``), client-side caching (``tracking``) and
the old job's ``getOHLCV`` (``compat``)."""
