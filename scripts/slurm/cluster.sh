#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, from Debian's packages, for trying
# profiles/slurm locally (README "Try the profile locally"). Needs root and apt.
#
#   scripts/slurm/cluster.sh install     install the Debian packages if a daemon is missing (CI setup)
#   scripts/slurm/cluster.sh start       install if needed, then start munged, mariadb, slurmdbd,
#                                        slurmctld, slurmd (in that order) and create the account
#   scripts/slurm/cluster.sh stop        stop them (reverse order); state and accounting stay
#   scripts/slurm/cluster.sh status      daemons, node state, account
#   scripts/slurm/cluster.sh stop-node   stop slurmd only (the node "dies"; the test's fault)
#   scripts/slurm/cluster.sh start-node  start slurmd again
#   scripts/slurm/cluster.sh stop-accounting / start-accounting   stop / start slurmdbd only (sacct fails)
#
# Every step is idempotent: `start` on a running cluster checks each daemon and returns.
# Settings (environment): SLURM_ACCOUNT (ladder), SLURM_PARTITION (debug), SLURM_CPUS (2),
# SLURM_MEM_MB (8000: must not exceed this machine's memory, or the node is drained),
# SLURMD_TIMEOUT (30 s: how soon a silent node is declared DOWN), SLURM_GPUS (2: GPUs the node
# declares as generic resources: placeholder devices, no GPU needed; 0 declares none).
# Changed settings take effect at the next `start` of stopped daemons (`stop` first).
# Daemons are stopped through their pid files only: this script ends the processes it started.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ACCOUNT="${SLURM_ACCOUNT:-ladder}"
PARTITION="${SLURM_PARTITION:-debug}"
CPUS="${SLURM_CPUS:-2}"
MEM_MB="${SLURM_MEM_MB:-8000}"
SLURMD_TIMEOUT="${SLURMD_TIMEOUT:-30}"
GPUS="${SLURM_GPUS:-2}"
DB_PASS_FILE=/etc/slurm/.ladder_db_pass
GPU_DIR=/run/slurm/gpus
PACKAGES=(slurm-wlm slurmdbd mariadb-server munge)

MUNGE_PID=/run/munge/munged.pid
MARIADB_PID=/run/mysqld/mysqld.pid
SLURMDBD_PID=/run/slurm/slurmdbd.pid
SLURMCTLD_PID=/run/slurm/slurmctld.pid
SLURMD_PID=/run/slurm/slurmd.pid

say() { echo "cluster.sh: $*"; }
die() { echo "cluster.sh: error: $*" >&2; exit 1; }

running() {  # running PIDFILE: true when the pid file names a live process
    [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds
    local seconds=$1 what=$2
    shift 2
    for ((i = 0; i < seconds * 2; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    die "$what did not come up within ${seconds}s (see /var/log/slurm/ and /var/log/mysql/)"
}

stop_pidfile() {  # stop_pidfile NAME PIDFILE: SIGTERM the recorded pid, wait up to 30 s
    local name=$1 pidfile=$2 pid
    if ! running "$pidfile"; then say "$name not running"; return 0; fi
    pid=$(cat "$pidfile")
    kill "$pid"
    for ((i = 0; i < 60; i++)); do
        kill -0 "$pid" 2>/dev/null || { say "$name stopped (pid $pid)"; rm -f "$pidfile"; return 0; }
        sleep 0.5
    done
    die "$name (pid $pid) did not stop within 30 s"
}

install() {
    [[ $EUID -eq 0 ]] || die "must run as root (it installs packages and starts system daemons)"
    local missing=()
    for cmd in munged mariadbd slurmdbd slurmctld slurmd sacct; do
        command -v "$cmd" >/dev/null || PATH="$PATH:/usr/sbin" command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    if ((${#missing[@]})); then
        command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get: install ${PACKAGES[*]} by hand"
        say "installing ${PACKAGES[*]} (missing: ${missing[*]})"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}" >/dev/null
    fi
}

render_configs() {
    mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm /run/slurm
    chown slurm:slurm /var/lib/slurm /var/lib/slurm/slurmctld /var/log/slurm /run/slurm
    if [[ ! -s $DB_PASS_FILE ]]; then
        (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$DB_PASS_FILE")
    fi
    local node_gres=""
    ((GPUS > 0)) && node_gres="Gres=gpu:$GPUS"
    sed -e "s/@CPUS@/$CPUS/" -e "s/@MEM_MB@/$MEM_MB/" -e "s/@PARTITION@/$PARTITION/" \
        -e "s/@SLURMD_TIMEOUT@/$SLURMD_TIMEOUT/" -e "s/@NODE_GRES@/$node_gres/" "$HERE/slurm.conf.in" >/etc/slurm/slurm.conf
    if ((GPUS > 0)); then
        mkdir -p $GPU_DIR
        for ((i = 0; i < GPUS; i++)); do  # placeholder GPU devices (gres.conf.in says why)
            [[ -e $GPU_DIR/gpu$i ]] || mknod -m 666 $GPU_DIR/gpu$i c 1 3 2>/dev/null || touch $GPU_DIR/gpu$i
        done
        sed -e "s|@GPU_DIR@|$GPU_DIR|" -e "s/@LAST_GPU@/$((GPUS - 1))/" "$HERE/gres.conf.in" >/etc/slurm/gres.conf
    else
        rm -f /etc/slurm/gres.conf
    fi
    sed -e "s/@DB_PASS@/$(cat "$DB_PASS_FILE")/" "$HERE/slurmdbd.conf.in" >/etc/slurm/slurmdbd.conf
    chown slurm:slurm /etc/slurm/slurmdbd.conf
    chmod 600 /etc/slurm/slurmdbd.conf
}

start_munge() {
    if running $MUNGE_PID; then say "munged running"; return 0; fi
    [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- munged --pid-file=$MUNGE_PID
    wait_for 10 munged munge -n
    say "munged started (pid $(cat $MUNGE_PID))"
}

start_mariadb() {
    if ! running $MARIADB_PID; then
        mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
        [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
        setsid mariadbd --user=mysql --pid-file=$MARIADB_PID </dev/null >>/var/log/slurm/mariadb.out 2>&1 &
        wait_for 30 mariadb mariadb -e "select 1"
        say "mariadb started (pid $(cat $MARIADB_PID))"
    else
        say "mariadb running"
    fi
    # The accounting database and its user (idempotent; the password is this machine's own).
    mariadb <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$(cat "$DB_PASS_FILE")';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$(cat "$DB_PASS_FILE")';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL
}

start_daemon() {  # start_daemon NAME PIDFILE READY-COMMAND... (slurm daemons fork by themselves)
    local name=$1 pidfile=$2
    shift 2
    if running "$pidfile"; then say "$name running"; return 0; fi
    case $name in
        slurmd) slurmd -N localhost ;;  # the node is named localhost whatever the hostname
        *) "$name" ;;
    esac
    wait_for 30 "$name" "$@"
    say "$name started (pid $(cat "$pidfile"))"
}

node_up() { sinfo -h -N -o %T | grep -qvE 'down|drain|unknown|not_responding|\*'; }

create_account() {
    if ! sacctmgr -n -P show cluster format=cluster | grep -qx localcluster; then
        sacctmgr -i add cluster localcluster >/dev/null
    fi
    if ! sacctmgr -n -P show account format=account | grep -qx "$ACCOUNT"; then
        sacctmgr -i add account "$ACCOUNT" cluster=localcluster description="LaDDer reproduction" >/dev/null
    fi
    local user
    for user in root ${SUDO_USER:-}; do
        if ! sacctmgr -n -P show assoc user="$user" account="$ACCOUNT" format=user | grep -qx "$user"; then
            sacctmgr -i add user "$user" account="$ACCOUNT" >/dev/null
        fi
    done
    say "account $ACCOUNT (partition $PARTITION)"
}

start() {
    install
    render_configs
    start_munge
    start_mariadb
    start_daemon slurmdbd $SLURMDBD_PID sacctmgr -n show cluster
    create_account  # before slurmctld, so it registers with the cluster already in the database
    start_daemon slurmctld $SLURMCTLD_PID scontrol ping
    start_daemon slurmd $SLURMD_PID test -s $SLURMD_PID
    # A node left DOWN by an earlier stop (its slurmd missed SlurmdTimeout), or DRAINED by an
    # earlier configuration (e.g. other GPUs), comes back here once slurmd has registered.
    wait_for 30 "slurmd registration" sh -c "sinfo -h -N -o %T | grep -qv unknown"
    sinfo -h -N -o %T | grep -qE 'down|drain|inval' && scontrol update nodename=localhost state=resume || true
    wait_for 60 "node localhost" node_up
    say "ready: $(sinfo -h -o '%P %a %D %T %c cpus %m MB %G')"
}

stop() {
    stop_pidfile slurmd $SLURMD_PID
    stop_pidfile slurmctld $SLURMCTLD_PID
    stop_pidfile slurmdbd $SLURMDBD_PID
    stop_pidfile mariadb $MARIADB_PID
    stop_pidfile munged $MUNGE_PID
}

status() {
    local name pidfile rc=0
    for name in munged:$MUNGE_PID mariadb:$MARIADB_PID slurmdbd:$SLURMDBD_PID slurmctld:$SLURMCTLD_PID slurmd:$SLURMD_PID; do
        pidfile=${name#*:}
        if running "$pidfile"; then echo "${name%%:*}: running (pid $(cat "$pidfile"))"; else echo "${name%%:*}: stopped"; rc=1; fi
    done
    if ((rc == 0)); then
        sinfo -o '%P %a %D %T %c %m'
        sacctmgr -n -P show assoc format=cluster,account,user | grep -v '|root|$\|^localcluster|root|' || true
    fi
    return $rc
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    stop-node) stop_pidfile slurmd $SLURMD_PID ;;
    start-node) start_daemon slurmd $SLURMD_PID test -s $SLURMD_PID ;;
    # Accounting down: sacct fails, as on a site whose slurmdbd is unreachable (tests/test_slurm.py).
    stop-accounting) stop_pidfile slurmdbd $SLURMDBD_PID ;;
    start-accounting) start_daemon slurmdbd $SLURMDBD_PID sacctmgr -n show cluster ;;
    *) echo "usage: $0 install|start|stop|status|stop-node|start-node|stop-accounting|start-accounting" >&2; exit 2 ;;
esac
