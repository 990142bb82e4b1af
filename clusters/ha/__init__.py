"""High availability of PostgreSQL clusters: pgpool-II in front, switchover, failover with
fencing, standby rebuilds and PCP (issue 8, parts 3, 4 and 6). docs/ha.md is the how-to.

    config.py     pure: pgpool.conf, pool_hba.conf, pcp.conf and the scripts, pcp_node_info parsing
    remote.py     the steps on hosts, each one executor call: atomic file writes, pg_ctl, PCP, SQL
    deploy.py     deploy_pgpool: write the files, start pgpool-II, verify routing
    prechecks.py  each operation's precheck (reads only): its checks and plan
    ops.py        the operations: switchover, failover, rebuild, PCP
    rejoin.py     a node made a synchronous standby: pg_rewind or pg_basebackup, attach, sync
    fence.py      fencing a former primary and enforcing it whenever it can be reached
    follow.py     after a failover: the other standbys follow the new primary (one job each)
    actions.py    what views call: prechecks, typed confirmation, audit, one job
    tasks.py      the Celery entry points (job bodies)
"""
