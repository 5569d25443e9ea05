# Shared helpers for lab/up, lab/down and lab/restart. Sourced, not executed.
# shellcheck shell=bash

LAB_REALM=LAB.EXAMPLE.TEST
LAB_DOMAIN=LAB
LAB_BASE_DN="DC=lab,DC=example,DC=test"
LAB_HOST_FQDN=dc1.lab.example.test
LAB_MARKER=.exo-writeback-lab
# The services of a lab DC: LDAP only (fast start). A forest DC (lab/up --forest-member) also
# runs the KDC, Samba's internal DNS (SRV records of the realm) and RPC (DRSUAPI, which
# `samba-tool domain join` and the DNS management of samba_dnsupdate need).
LAB_SERVICES="ldap"
LAB_FOREST_SERVICES="ldap, cldap, kdc, rpc, dns"

die() {
    echo "lab: error: $*" >&2
    exit 1
}

note() {
    echo "lab: $*" >&2
}

# Milliseconds since the epoch, for timing reports.
now_ms() {
    date +%s%3N
}

# is_lab_dir DIR: DIR carries the lab's marker file.
is_lab_dir() {
    [[ -f "$1/$LAB_MARKER" ]]
}

# samba_pid DIR: prints the pid of the DC's root process if it is alive and really serves DIR.
samba_pid() {
    local dir=$1 pid
    [[ -f "$dir/samba.pid" ]] || return 1
    pid=$(<"$dir/samba.pid")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    # Samba overwrites its command line with a process title; lab/up starts it with its
    # working directory in DIR, which identifies it.
    [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$(realpath -m -- "$dir")" ]] || return 1
    echo "$pid"
}

# profile_value ROOT KEY DEFAULT: a value of ROOT/.dc-profile (NETBIOS, SERVICES, FQDN), which
# a forest member's template carries; DEFAULT for the single-DC templates that have none.
profile_value() {
    local value=
    [[ -f "$1/.dc-profile" ]] && value=$(sed -n "s/^$2=//p" "$1/.dc-profile")
    echo "${value:-$3}"
}

# socket_dir ROOT: where ROOT's DC puts its Unix sockets. A socket's path holds at most 107
# bytes (sun_path in unix(7)); samba's longest is <ncalrpc dir>/np/protected_storage. Inside
# ROOT when that fits, else in a short directory under /tmp named after ROOT (a deep checkout,
# such as a CI runner's, otherwise fails with NT_STATUS_OBJECT_PATH_INVALID at start).
# stop_dc removes the short directory.
socket_dir() {
    local root=$1
    if ((${#root} + ${#LAB_LONGEST_SOCKET} <= 100)); then
        echo "$root/run"
    else
        echo "/tmp/exwb-$(printf '%s' "$root" | sha256sum | cut -c1-16)"
    fi
}
LAB_LONGEST_SOCKET=/run/ncalrpc/np/protected_storage

# write_smb_conf ROOT [ADDR]: the DC's own smb.conf, every path inside ROOT (sockets aside, see
# socket_dir).
write_smb_conf() {
    local root=$1 addr=${2:-} netbios services sockets
    sockets=$(socket_dir "$root")
    [[ "$sockets" != "$root"/* ]] || mkdir -p "$sockets" # one outside ROOT: made by start_dc
    netbios=$(profile_value "$root" NETBIOS DC1)
    services=$(profile_value "$root" SERVICES "$LAB_SERVICES")
    mkdir -p "$root/etc"
    {
        cat <<CONF
# Written by exo-writeback lab/up. Every path is inside this lab directory.
[global]
	netbios name = $netbios
	realm = $LAB_REALM
	workgroup = $LAB_DOMAIN
	server role = active directory domain controller
	server services = $services
	ldb:nosync = true
	private dir = $root/private
	lock directory = $root/lock
	state directory = $root/state
	cache directory = $root/cache
	binddns dir = $root/bind-dns
	pid directory = $root/run
	ncalrpc dir = $sockets/ncalrpc
	winbindd socket directory = $sockets/winbindd
	ntp signd socket directory = $sockets/ntp_signd
	log file = $root/log/log.samba
	log level = 1
	tls enabled = yes
	# As Windows with LDAP signing required: a simple bind needs TLS, and SASL (Kerberos) over
	# TLS is accepted without a SASL security layer (the channel is bound to the TLS session).
	# Samba's default, yes, refuses SASL over TLS without sign/seal, which Windows accepts.
	ldap server require strong auth = allow_sasl_over_tls
	tls keyfile = $root/tls/server-key.pem
	tls certfile = $root/tls/server.pem
	tls cafile = $root/tls/ca.pem
CONF
        if [[ -n "$addr" ]]; then
            printf '\tinterfaces = %s/8\n\tbind interfaces only = yes\n' "$addr"
        fi
        cat <<CONF

[sysvol]
	path = $root/state/sysvol
	read only = no

[netlogon]
	path = $root/state/sysvol/lab.example.test/scripts
	read only = no
CONF
    } >"$root/etc/smb.conf"
}

# samba_env: environment for every offline samba/ldb tool call.
export TDB_NO_FSYNC=1

# make_ca DIR: a small test CA (EC P-256) in DIR/tls; the key never leaves the lab directories.
make_ca() {
    local tls=$1/tls
    mkdir -p "$tls"
    umask 077
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$tls/ca-key.pem" -out "$tls/ca.pem" -days 3650 -sha256 \
        -subj "/O=exo-writeback lab/CN=exo-writeback lab test CA" \
        -config /dev/null \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" 2>/dev/null ||
        die "openssl could not create the lab CA in $tls"
    umask 022
    chmod 0644 "$tls/ca.pem"
    chmod 0600 "$tls/ca-key.pem"
}

# make_server_cert DIR ADDR: a server certificate for ADDR (and the DC's host name) signed by
# DIR's test CA. Samba refuses to serve LDAP with a key file readable by others
# (CVE-2013-4476): mode 0600.
make_server_cert() {
    local tls=$1/tls addr=$2 ext fqdn
    fqdn=$(profile_value "$1" FQDN "$LAB_HOST_FQDN")
    ext=$(mktemp)
    printf '%s\n' \
        "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" \
        "subjectKeyIdentifier=hash" \
        "authorityKeyIdentifier=keyid" \
        "subjectAltName=IP:$addr,DNS:$fqdn" >"$ext"
    umask 077
    if ! openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$tls/server-key.pem" -subj "/CN=$fqdn" -config /dev/null 2>/dev/null |
        openssl x509 -req -CA "$tls/ca.pem" -CAkey "$tls/ca-key.pem" -days 825 -sha256 \
            -set_serial "0x$(openssl rand -hex 16)" -extfile "$ext" -out "$tls/server.pem" 2>/dev/null; then
        umask 022
        rm -f "$ext"
        die "openssl could not create the server certificate for $addr in $tls"
    fi
    umask 022
    rm -f "$ext"
    chmod 0600 "$tls/server-key.pem"
    chmod 0644 "$tls/server.pem"
}

# pids_in_dir DIR: every process whose working directory or any open file lies inside DIR.
# (Samba overwrites its argv and environment with process titles, so pgrep -f cannot find it.)
pids_in_dir() {
    local dir pattern
    dir=$(realpath -m -- "$1")
    pattern=$(printf '%s' "$dir" | sed 's/[][*?\\]/\\&/g')
    find /proc/[0-9]*/cwd /proc/[0-9]*/fd/ -maxdepth 1 \
        \( -lname "$pattern" -o -lname "$pattern/*" -o -lname "$pattern (deleted)" \) 2>/dev/null |
        cut -d/ -f3 | sort -u | grep -vxF -e "$$" -e "$BASHPID" || true
}

# stat_start_time PID: the process's start time (field 22 of /proc/PID/stat), to tell it from
# a later process that reuses the pid.
stat_start_time() {
    local stat rest f
    stat=$(<"/proc/$1/stat") || return 1
    rest=${stat##*) }
    read -r -a f <<<"$rest"
    echo "${f[19]}"
}

# process_running PID: PID exists and is not a zombie (an exited child its parent has not
# reaped yet still answers kill -0).
process_running() {
    local stat rest
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
    rest=${stat##*) }
    [[ "${rest:0:1}" != Z && "${rest:0:1}" != X ]]
}

# group_running PGID: some process of the process group is running (zombies do not count).
group_running() {
    local f stat rest fields
    for f in /proc/[0-9]*/stat; do
        read -r stat 2>/dev/null <"$f" || continue
        rest=${stat##*) }
        read -r -a fields <<<"$rest"
        # fields: state ppid pgrp ...
        if [[ "${fields[2]}" == "$1" && "${fields[0]}" != Z && "${fields[0]}" != X ]]; then
            return 0
        fi
    done
    return 1
}

# session_pids SID: the running processes of session SID (zombies do not count).
session_pids() {
    local f stat rest fields
    for f in /proc/[0-9]*/stat; do
        read -r stat 2>/dev/null <"$f" || continue
        rest=${stat##*) }
        read -r -a fields <<<"$rest"
        # fields: state ppid pgrp session ...
        if [[ "${fields[3]}" == "$1" && "${fields[0]}" != Z && "${fields[0]}" != X ]]; then
            echo "${f//[^0-9]/}"
        fi
    done
}

# stop_dc DIR: stops the DC serving DIR: SIGTERM to samba's process group (and any samba
# process working inside DIR), SIGKILL after a 5 s grace; dies if one survives. Leaves DIR.
stop_dc() {
    local dir=$1
    local pgid= p others samba_exe
    if [[ -f "$dir/samba.pid" ]]; then
        pgid=$(<"$dir/samba.pid")
        [[ "$pgid" =~ ^[1-9][0-9]*$ ]] || pgid=
    fi

    # The DC's processes: samba's session (lab/up starts it with setsid, so session = process
    # group = samba's pid), plus any samba process working inside $dir (should one have escaped
    # the session). Never other processes, even if they sit in $dir (say, a shell cd'ed there).
    samba_exe=$(realpath -e "$(command -v samba 2>/dev/null || echo /usr/sbin/samba)" 2>/dev/null || echo /usr/sbin/samba)
    dc_pids() {
        local p
        [[ -n "$pgid" ]] && session_pids "$pgid"
        for p in $(pids_in_dir "$dir"); do
            [[ "$(readlink "/proc/$p/exe" 2>/dev/null)" == "$samba_exe" ]] && echo "$p"
        done
        return 0
    }
    alive() {
        [[ -n "$(dc_pids)" ]]
    }

    if [[ -n "$pgid" ]]; then
        kill -TERM -- "-$pgid" 2>/dev/null || true
    fi
    for p in $(dc_pids); do
        kill -TERM "$p" 2>/dev/null || true
    done
    for _ in $(seq 1 50); do # 5 s grace
        alive || break
        sleep 0.1
    done
    for _ in 1 2 3 4 5; do
        alive || break
        [[ -n "$pgid" ]] && kill -KILL -- "-$pgid" 2>/dev/null || true
        for p in $(dc_pids); do
            kill -KILL "$p" 2>/dev/null || true
        done
        sleep 0.2
    done
    if alive; then
        die "samba processes survive SIGKILL in $dir: $(dc_pids | sort -u | tr '\n' ' ')"
    fi
    others=$(pids_in_dir "$dir" | tr '\n' ' ')
    if [[ -n "${others// /}" ]]; then
        note "warning: processes other than the DC use $dir (left alone): $others"
    fi

    # Exited processes are zombies until their new parent (init) reaps them: give it a moment,
    # so that callers see them gone.
    for _ in $(seq 1 20); do
        [[ -n "$pgid" ]] && kill -0 -- "-$pgid" 2>/dev/null || break
        sleep 0.1
    done
    # Sockets kept outside DIR (a deep DIR, see socket_dir) go with the DC.
    local sockets
    sockets=$(socket_dir "$dir")
    [[ "$sockets" == "$dir"/* ]] || rm -rf -- "$sockets"
}

# ldaps_answers DIR ADDR: the rootDSE over LDAPS, CA verified
ldaps_answers() {
    LDAPTLS_CACERT="$1/tls/ca.pem" LDAPTLS_REQCERT=demand LDAPTLS_CERT= LDAPTLS_KEY= \
        ldapsearch -LLL -x -H "ldaps://$2" -b "" -s base -o nettimeout=2 namingContexts >/dev/null 2>&1
}

# start_dc DIR ADDR [MAX_RUNTIME]: starts samba on DIR's data (its own session, every
# descriptor redirected), records its pid in DIR/samba.pid and DC_PID, and waits (~30 s) until
# LDAPS answers on ADDR with the CA verified. Returns 1 if it exits or does not answer.
start_dc() {
    local dir=$1 addr=$2 max_runtime=${3:-} samba_bin pid started
    local -a runtime_opt
    samba_bin=$(command -v samba || echo /usr/sbin/samba) # /usr/sbin may be missing from PATH
    runtime_opt=()
    [[ -n "$max_runtime" ]] && runtime_opt=("--maximum-runtime=$max_runtime")
    mkdir -p "$(socket_dir "$dir")"

    # setsid: own session and process group (pgid = pid), so lab/down can kill the whole tree.
    # Every inherited descriptor is redirected or closed: a caller reading our output must see EOF.
    (
        cd "$dir"
        exec setsid "$samba_bin" --foreground --no-process-group -s "$dir/etc/smb.conf" -l "$dir/log" \
            "${runtime_opt[@]}" </dev/null >>"$dir/log/samba.stdout" 2>&1
    ) &
    pid=$!
    echo "$pid" >"$dir/samba.pid"

    started=0
    for _ in $(seq 1 300); do # ~30 s
        if ! process_running "$pid"; then
            break # samba gave up (its reason is in the log)
        fi
        if ldaps_answers "$dir" "$addr"; then
            started=1
            break
        fi
        sleep 0.1
    done
    DC_PID=$pid
    ((started))
}
