

def test_backoff_honours_retry_after_up_to_max_pause_and_doubles_with_jitter_otherwise() -> None:
    from runner.pacing import MAX_PAUSE, backoff

    assert backoff(1, 2.5) == 2.5 and backoff(3, -1) == 0.0
    assert backoff(1, 86_400) == MAX_PAUSE  # a 5xx asking for a day holds its job 5 minutes at most
    for attempt, top in ((1, 0.25), (3, 1.0), (20, 30.0)):
        waits = [backoff(attempt, None) for _ in range(200)]
        assert top / 2 <= min(waits) and max(waits) <= top
