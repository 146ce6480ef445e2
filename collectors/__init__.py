"""The collectors: scheduled jobs that fetch with `e2bapi` and hand rows to `storage`.

    parse          API payloads into storage rows (pure, the clock a parameter)
    oom            OOM kills from log lines, killed events and samples (pure)
    config         the jobs' intervals and limits
    work           work one job leaves for another (gaps to backfill, signs of trouble)
    context        what a job gets: clients, store, clock, work lists, a tally of rows
    async_actions  the async client's event loop thread (concurrent batch metrics)
    jobs           poll, team, events, slow, maintenance
    backfill       fetch the samples a gap is missing
    templates      the template catalog (run by the slow job)
    trouble        log sweep for OOM lines; logs and incidents around signs of trouble
    scheduler      `Collector`: the jobs on APScheduler, every run recorded, backoff

Imports go one way: collectors -> e2bapi, storage. Import from the module itself
(`collectors.scheduler.Collector`): the package re-exports nothing, so that reading a setting
(`collectors.config`) does not load APScheduler and the jobs.
"""
