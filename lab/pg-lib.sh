# Shared helpers for lab/pg-up, lab/pg-down and lab/pg-restart. Sourced, not executed.
# shellcheck shell=bash

PG_MARKER=.exo-writeback-pg
# The cluster's superuser (the agents' account in tests) and its database.
PG_SUPERUSER=exo
PG_PORT=5432

# pg_bin: the directory of PostgreSQL 15's server programs (Debian keeps them off PATH).
pg_bin() {
    local bin=/usr/lib/postgresql/15/bin
    [[ -x "$bin/pg_ctl" ]] || return 1
    echo "$bin"
}

# pg_user: the account the cluster runs as. PostgreSQL refuses to run as root: as root, the
# `postgres` system account the Debian package creates; otherwise the caller.
pg_user() {
    if ((EUID == 0)); then
        echo postgres
    else
        id -un
    fi
}

# as_pg CMD...: runs CMD as the cluster's account.
as_pg() {
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

is_pg_dir() {
    [[ -f "$1/$PG_MARKER" ]]
}

# pg_pid DIR: the postmaster's pid if it runs on DIR's data.
pg_pid() {
    local dir=$1 pid
    [[ -f "$dir/data/postmaster.pid" ]] || return 1
    pid=$(head -n1 "$dir/data/postmaster.pid")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

# pg_start DIR: starts the cluster and waits until it accepts connections.
pg_start() {
    local dir=$1 bin
    bin=$(pg_bin) || die "PostgreSQL 15 is not installed (lab/install installs it)"
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log/postgresql.log" -w -t 60 -s start >/dev/null ||
        { tail -n 20 "$dir/log/postgresql.log" >&2 || true; die "PostgreSQL in $dir did not start"; }
}

# pg_stop DIR [MODE]: stops the cluster (fast: open connections are cut, like a restart).
pg_stop() {
    local dir=$1 mode=${2:-fast} bin
    bin=$(pg_bin) || return 0
    pg_pid "$dir" >/dev/null || return 0
    as_pg "$bin/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 -s stop >/dev/null 2>&1 ||
        as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 30 -s stop >/dev/null 2>&1 || true
}
