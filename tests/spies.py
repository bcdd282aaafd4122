"""Spies the suites share: what multiparam did, counted where it does it;
and the one setting that makes a write plan's work-ahead path run on any
model, however small."""


def every_value_ahead(monkeypatch) -> None:
    """Make every value of a write plan large enough to be converted, or
    written, by a worker beside the writing thread (the size bar at 0
    bytes), on three cores (each group: the writing thread's value and
    two workers'), so small test models take the path big ones take."""
    from multiparam import threads, transaction
    monkeypatch.setattr(transaction, "CONVERT_AHEAD_BYTES", 0)
    monkeypatch.setattr(threads, "cores", lambda: 3)


def count_writes(monkeypatch) -> list:
    """Count every value written into any parameter from now on (both of
    ``Param``'s write paths); returns the one-item list that holds the count."""
    from multiparam import param
    writes = [0]

    def counted(plain):
        def write(self, *args, **kwargs):
            done = plain(self, *args, **kwargs)
            if done is not False:          # fill_validated: False wrote nothing
                writes[0] += 1
            return done
        return write

    monkeypatch.setattr(param.Param, "write_validated", counted(param.Param.write_validated))
    monkeypatch.setattr(param.Param, "fill_validated", counted(param.Param.fill_validated))
    return writes


def record_reads(monkeypatch) -> list:
    """``(how, name)`` for each tensor a checkpoint reads: into fresh memory
    (``read``), into given memory (``read_into``), as a view of its
    mapping (``array``) or as a view handed to a function and released
    after it (``with_tensor``)."""
    from multiparam import checkpoint
    calls = []

    def spy(how):
        plain = getattr(checkpoint.Checkpoint, how)

        def recorded(self, name, *rest):
            calls.append((how, name))
            return plain(self, name, *rest)
        return recorded
    for how in ("read", "read_into", "array", "with_tensor"):
        monkeypatch.setattr(checkpoint.Checkpoint, how, spy(how))
    return calls
