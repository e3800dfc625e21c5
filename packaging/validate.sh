#!/usr/bin/env bash
# Validates the node's packages on this machine, the way an operator meets them:
#
#   1. builds the .deb and the .rpm (packaging/build-packages.sh) and checks what each contains:
#      files, modes, owners, config-file flags, maintainer scripts, dependencies;
#   2. installs the .deb (twice: the maintainer scripts must be idempotent) and checks the
#      service account, its directories and their modes; verifies the installed systemd units;
#   3. with no systemd to run them here, starts the software TPM and the node from the ExecStart=
#      lines of the INSTALLED units, as the vaulthalla user, as systemd would; points the node at
#      the software TPM as config.yaml's comments say, and drives it with vh and the AWS CLI;
#   4. removes the package (data, config and user stay), then purges it (all three go);
#   5. installs the .rpm with rpm (a private database), checks its scriptlets did their work,
#      runs the node once, and erases it.
#
# Runs as root on a Debian machine where no vaulthalla node lives (it refuses otherwise) and
# leaves the machine as it found it, whatever fails. Exits non-zero on the first failed check.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

SERVICE_USER=vaulthalla
S3_HOST=127.0.0.1
SWTPM_PORTS=(2321 2322)
START_TIMEOUT=60
STOP_TIMEOUT=30

PASSED=0
step() { printf '\n==> %s\n' "$*"; }
pass() {
    PASSED=$((PASSED + 1))
    printf '    ok: %s\n' "$*"
}
note() { printf '    note: %s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    printf 'validate: %d passed, 1 failed\n' "$PASSED" >&2
    exit 1
}
# check DESCRIPTION COMMAND...: the command must succeed.
check() {
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
    if [ "$2" == "$3" ]; then
        pass "$1"
    else
        fail "$1: expected [$2], got [$3]"
    fi
}
port_free() { [ -z "$(ss -Htln "sport = :$1")" ]; }
# stat_of PATH: "MODE OWNER GROUP".
stat_of() { stat -c '%a %U %G' "$1"; }
# A key's value in a unit file, continuation lines joined; the last one wins.
unit_value() {
    python3 - "$1" "$2" <<'PY'
import sys
path, key = sys.argv[1:]
lines = open(path, encoding="utf-8").read().replace("\\\n", " ").splitlines()
values = [line.split("=", 1)[1].strip() for line in lines if line.startswith(key + "=")]
print(values[-1] if values else "")
PY
}
installed_unit() {
    local dir
    for dir in /usr/lib/systemd/system /lib/systemd/system; do
        if [ -f "$dir/$1" ]; then
            echo "$dir/$1"
            return 0
        fi
    done
    fail "unit $1 is not installed"
}
# The command line of a unit's ExecStart=, which this script runs itself.
exec_start() {
    local line
    line=$(unit_value "$(installed_unit "$1")" ExecStart)
    [ -n "$line" ] || fail "$1 has no ExecStart="
    case "$line" in
        [-@:+!]*) fail "$1: ExecStart= prefixes are not emulated here: $line" ;;
    esac
    echo "$line"
}
# make_unit_dir UNIT KEY BASE: creates the RuntimeDirectory=/StateDirectory= KEY of UNIT under
# BASE, owned by the service user with the unit's mode, as systemd does before ExecStart=.
make_unit_dir() {
    local unit name mode
    unit=$(installed_unit "$1")
    name=$(unit_value "$unit" "$2")
    mode=$(unit_value "$unit" "${2}Mode")
    [ -n "$name" ] || fail "$1 has no $2="
    install -d -m "${mode:-0755}" -o "$SERVICE_USER" -g "$SERVICE_USER" "$3/$name"
}
# set_setting PATH VALUE: uncomments the setting PATH (`section.key`, or `key` at the top level)
# in the installed config.yaml and gives it VALUE, as an operator following the file's comments
# does. The file is rewritten in place, so it keeps its owner and mode.
set_setting() {
    python3 - /etc/vaulthalla/config.yaml "$1" "$2" <<'PY' || fail "could not set $1 in config.yaml"
import re, sys
file, path, value = sys.argv[1:]
lines = open(file, encoding="utf-8").read().splitlines()
sections, hits = [], []
for number, line in enumerate(lines):
    indent = len(line) - len(line.lstrip())
    content = line.lstrip()
    if content and not content.startswith("#"):
        sections = [(level, name) for level, name in sections if level < indent]
        if content.endswith(":"):
            sections.append((indent, content[:-1]))
    match = re.fullmatch(r"#([a-z][a-z0-9_]*):.*", content)
    if match:
        full = [name for level, name in sections if level < indent] + [match.group(1)]
        if ".".join(full) == path:
            hits.append(number)
            lines[number] = f"{line[:indent]}{match.group(1)}: {value}"
if len(hits) != 1:
    sys.exit(f"{path}: listed {len(hits)} times, not once")
with open(file, "w", encoding="utf-8") as out:
    out.write("\n".join(lines) + "\n")
PY
    pass "config.yaml: $1: $2"
}
# The package's dpkg state, empty when dpkg knows of no such package.
deb_status() {
    dpkg-query -W -f='${Status}' vaulthalla 2>/dev/null | grep -v '^unknown ok not-installed$' || true
}

[ "$(id -u)" -eq 0 ] || fail "run as root: this installs and removes packages"
for tool in dpkg-deb apt-get; do
    command -v "$tool" >/dev/null || fail "a Debian machine (dpkg, apt) is needed: no $tool"
done
command -v rpm >/dev/null || fail "rpm is needed to query the .rpm (apt-get install rpm)"
command -v aws >/dev/null || fail "the AWS CLI is needed (pip install awscli)"

# Cleanup deletes what a node leaves, so refuse to start where one may live.
[ -z "$(deb_status)" ] || fail "a vaulthalla package is on this machine ($(deb_status)); remove it first"
! getent passwd "$SERVICE_USER" >/dev/null || fail "user $SERVICE_USER exists; remove it first"
! getent group "$SERVICE_USER" >/dev/null || fail "group $SERVICE_USER exists; remove it first"
for path in /var/lib/vaulthalla /etc/vaulthalla /run/vaulthalla /run/vaulthalla-swtpm \
    /mnt/vaulthalla /usr/bin/vaulthalla /usr/bin/vh; do
    [ ! -e "$path" ] || fail "$path exists; this machine has a node on it"
done
TSS_EXISTED=no
if getent group tss >/dev/null; then TSS_EXISTED=yes; fi

WORK=$(mktemp -d /tmp/vh-validate.XXXXXX)
chmod 0755 "$WORK"
# Every rpm call uses a database of its own: even a query would create one in root's home.
RPMDB="$WORK/rpmdb"
mkdir "$RPMDB"
rpm_cmd() { rpm --dbpath "$RPMDB" "$@"; }
NODE_RUNNER=
SWTPM_PID=

# as_service: runs the node as vaulthalla.service does: as the service user, with CAP_SYS_ADMIN
# as its one (ambient) capability, which the FUSE mount needs.
as_service() {
    exec setpriv --reuid="$SERVICE_USER" --regid="$SERVICE_USER" --init-groups \
        --inh-caps=-all,+sys_admin --ambient-caps=-all,+sys_admin \
        --bounding-set=-all,+sys_admin -- "$@"
}

# stop_node: SIGTERM to the daemon (setpriv execs it, so it is the runner itself); it must exit
# 0 within STOP_TIMEOUT.
stop_node() {
    local daemon status=0
    [ -n "$NODE_RUNNER" ] || return 0
    kill -0 "$NODE_RUNNER" 2>/dev/null ||
        fail "the node is no longer running:$(printf '\n'; cat "$WORK/node.log")"
    daemon=$(pgrep -P "$NODE_RUNNER" || echo "$NODE_RUNNER")
    kill -TERM "$daemon"
    for _ in $(seq $((STOP_TIMEOUT * 10))); do
        kill -0 "$NODE_RUNNER" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$NODE_RUNNER" 2>/dev/null; then
        fail "the node did not stop within ${STOP_TIMEOUT}s of SIGTERM"
    fi
    wait "$NODE_RUNNER" || status=$?
    NODE_RUNNER=
    expect_eq "the node exits 0 on SIGTERM" 0 "$status"
}

cleanup() {
    local status=$?
    set +e
    trap - EXIT INT TERM ERR
    if [ -n "$NODE_RUNNER" ]; then
        pkill -TERM -P "$NODE_RUNNER"
        wait "$NODE_RUNNER" 2>/dev/null
    fi
    if [ -n "$SWTPM_PID" ] && kill -TERM "$SWTPM_PID" 2>/dev/null; then
        for _ in $(seq 50); do kill -0 "$SWTPM_PID" 2>/dev/null || break; sleep 0.1; done
    fi
    if [ -n "$(deb_status)" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq vaulthalla >/dev/null 2>&1 ||
            dpkg --purge vaulthalla >/dev/null 2>&1
    fi
    if rpm_cmd -q vaulthalla >/dev/null 2>&1; then
        rpm_cmd -e --nodeps --noscripts vaulthalla >/dev/null 2>&1
    fi
    # What a failed run may leave: nothing here existed before the run (checked above).
    getent passwd "$SERVICE_USER" >/dev/null && userdel "$SERVICE_USER"
    getent group "$SERVICE_USER" >/dev/null && groupdel "$SERVICE_USER"
    [ "$TSS_EXISTED" = no ] && getent group tss >/dev/null && groupdel tss
    rm -rf /var/lib/vaulthalla /etc/vaulthalla /run/vaulthalla /run/vaulthalla-swtpm
    rmdir /mnt/vaulthalla 2>/dev/null
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'fail "line $LINENO: $BASH_COMMAND"' ERR
trap 'printf "validate: interrupted\n" >&2; exit 130' INT
trap 'printf "validate: terminated\n" >&2; exit 143' TERM

# ---------------------------------------------------------------------------------------------
step "Build the packages"
packages=$(packaging/build-packages.sh) || fail "packaging/build-packages.sh failed"
mapfile -t PACKAGES <<<"$packages"
DEB=$(realpath -e "${PACKAGES[0]}")
RPM=$(realpath -e "${PACKAGES[1]}")
check "built $DEB" test -f "$DEB"
check "built $RPM" test -f "$RPM"

step "Maintainer scripts: POSIX sh"
for script in packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm \
    packaging/rpm/*.sh; do
    check "$script parses as sh" sh -n "$script"
    check "$script runs under set -e" grep -qx 'set -e' "$script"
    if command -v shellcheck >/dev/null; then
        check "$script passes shellcheck" shellcheck --shell=sh "$script"
    fi
done
command -v shellcheck >/dev/null || note "shellcheck is not installed: lint skipped"

# ---------------------------------------------------------------------------------------------
step "The .deb: files, modes, metadata"
dpkg-deb --contents "$DEB"
actual=$(dpkg-deb --contents "$DEB" | awk '$1 !~ /^d/ { print $1, $2, $6 }' | sort -k3)
expected=$(sort -k3 <<'EOF'
-rw-r----- 0/0 ./etc/vaulthalla/config.yaml
-rwxr-xr-x 0/0 ./usr/bin/vaulthalla
-rwxr-xr-x 0/0 ./usr/bin/vh
-rw-r--r-- 0/0 ./usr/lib/systemd/system/vaulthalla-swtpm.service
-rw-r--r-- 0/0 ./usr/lib/systemd/system/vaulthalla.service
-rw-r--r-- 0/0 ./usr/lib/tmpfiles.d/vaulthalla.conf
-rw-r--r-- 0/0 ./usr/lib/udev/rules.d/60-vaulthalla-tpm.rules
-rw-r--r-- 0/0 ./usr/share/doc/vaulthalla/README.md
-rw-r--r-- 0/0 ./usr/share/doc/vaulthalla/copyright
EOF
)
expect_eq "the .deb holds exactly the expected files and modes" "$expected" "$actual"
expect_eq "the .deb's conffiles" "/etc/vaulthalla/config.yaml" \
    "$(dpkg-deb --info "$DEB" conffiles | tr -d '[:space:]')"
for script in postinst prerm postrm; do
    check "the .deb's $script is packaging/debian/$script, unaltered" \
        cmp -s <(dpkg-deb --info "$DEB" "$script") "packaging/debian/$script"
done
depends=$(dpkg-deb --field "$DEB" Depends)
echo "    Depends: $depends"
check "the .deb depends on the TPM libraries it links" grep -q 'libtss2-esys' <<<"$depends"
mkdir "$WORK/deb-root"
dpkg-deb --extract "$DEB" "$WORK/deb-root"
for bin in vaulthalla vh; do
    check "the packaged $bin is stripped" \
        sh -c "file -b '$WORK/deb-root/usr/bin/$bin' | grep -q ', stripped'"
    check "the packaged $bin runs" "$WORK/deb-root/usr/bin/$bin" --version
done
check "the packaged config.yaml is packaging/config.yaml" \
    cmp -s "$WORK/deb-root/etc/vaulthalla/config.yaml" packaging/config.yaml

step "The .rpm: files, modes, owners, flags, scriptlets"
rpm_cmd -qlp "$RPM"
actual=$(rpm_cmd -qp --queryformat \
    '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]' \
    "$RPM" | sort -k4)
expected=$(sort -k4 <<'EOF'
-rw-r----- vaulthalla:vaulthalla cn /etc/vaulthalla/config.yaml
-rwxr-xr-x root:root - /usr/bin/vaulthalla
-rwxr-xr-x root:root - /usr/bin/vh
-rw-r--r-- root:root - /usr/lib/systemd/system/vaulthalla-swtpm.service
-rw-r--r-- root:root - /usr/lib/systemd/system/vaulthalla.service
-rw-r--r-- root:root - /usr/lib/tmpfiles.d/vaulthalla.conf
-rw-r--r-- root:root - /usr/lib/udev/rules.d/60-vaulthalla-tpm.rules
-rw-r--r-- root:root d /usr/share/doc/vaulthalla/README.md
EOF
)
# rpm prints an empty flag set as nothing; make it "-" to compare columns.
actual=$(awk 'NF == 3 { $4 = $3; $3 = "-" } { print }' <<<"$actual" | sort -k4)
expect_eq "the .rpm holds exactly the expected files, modes, owners and flags" "$expected" "$actual"
expect_eq "the .rpm's %config(noreplace) files" "/etc/vaulthalla/config.yaml" "$(rpm_cmd -qcp "$RPM")"
for scriptlet in PREIN:pre POSTIN:post PREUN:preun POSTUN:postun; do
    check "the .rpm's ${scriptlet%%:*} is packaging/rpm/${scriptlet#*:}.sh" \
        cmp -s <(rpm_cmd -qp --queryformat "%{${scriptlet%%:*}}" "$RPM") "packaging/rpm/${scriptlet#*:}.sh"
done
requires=$(rpm_cmd -qpR "$RPM")
while read -r requirement; do echo "    Requires: $requirement"; done <<<"$requires"
check "the .rpm requires the TPM libraries it links" grep -q 'libtss2-esys' <<<"$requires"
check "the .rpm requires useradd for its scriptlets" grep -qF '(shadow-utils or shadow)' <<<"$requires"

# ---------------------------------------------------------------------------------------------
step "Install the .deb"
export DEBIAN_FRONTEND=noninteractive
check_installed() {
    local entry
    expect_eq "package state after $1" "install ok installed" "$(deb_status)"
    entry=$(getent passwd "$SERVICE_USER")
    expect_eq "user $SERVICE_USER: home and shell" "/var/lib/vaulthalla:/usr/sbin/nologin" \
        "$(cut -d: -f6,7 <<<"$entry")"
    check "user $SERVICE_USER is a system account" test "$(cut -d: -f3 <<<"$entry")" -lt 1000
    check "group $SERVICE_USER exists" getent group "$SERVICE_USER"
    check "user $SERVICE_USER is in group tss" \
        sh -c "id -nG $SERVICE_USER | tr ' ' '\n' | grep -qx tss"
    expect_eq "/var/lib/vaulthalla" "700 vaulthalla vaulthalla" "$(stat_of /var/lib/vaulthalla)"
    expect_eq "/etc/vaulthalla" "750 vaulthalla vaulthalla" "$(stat_of /etc/vaulthalla)"
    expect_eq "/etc/vaulthalla/config.yaml" "640 vaulthalla vaulthalla" \
        "$(stat_of /etc/vaulthalla/config.yaml)"
    expect_eq "/run/vaulthalla" "750 vaulthalla vaulthalla" "$(stat_of /run/vaulthalla)"
    expect_eq "/mnt/vaulthalla" "755 vaulthalla vaulthalla" "$(stat_of /mnt/vaulthalla)"
    check "config.yaml is registered as a conffile" \
        sh -c "dpkg-query -W -f='\${Conffiles}' vaulthalla | grep -q '/etc/vaulthalla/config.yaml'"
}
apt-get install -y -qq "$DEB" >"$WORK/apt.log" 2>&1 || fail "apt-get install:$(cat "$WORK/apt.log")"
check_installed "apt-get install"
check "the installed config.yaml is the packaged one" cmp -s /etc/vaulthalla/config.yaml packaging/config.yaml
apt-get install -y -qq --reinstall "$DEB" >"$WORK/apt.log" 2>&1 ||
    fail "apt-get install --reinstall:$(cat "$WORK/apt.log")"
check_installed "a reinstall (maintainer scripts run again)"

if command -v systemd-analyze >/dev/null; then
    check "systemd-analyze verify accepts both installed units" systemd-analyze verify \
        "$(installed_unit vaulthalla.service)" "$(installed_unit vaulthalla-swtpm.service)"
else
    note "systemd-analyze is not installed: unit verification skipped"
fi
if command -v udevadm >/dev/null && [ -e /sys/class/mem/null ]; then
    # udevadm test reads every rules file, and names each bad line of one.
    udev_report=$(udevadm test /sys/class/mem/null 2>&1 || true)
    check "udev reads 60-vaulthalla-tpm.rules" \
        grep -q 'Reading rules file: .*/60-vaulthalla-tpm.rules' <<<"$udev_report"
    expect_eq "udev finds no error in 60-vaulthalla-tpm.rules" "" \
        "$(grep '60-vaulthalla-tpm.rules:' <<<"$udev_report" || true)"
else
    note "udevadm is not installed: the udev rules are not checked"
fi
for key in User Group SupplementaryGroups RuntimeDirectory StateDirectory ConfigurationDirectory \
    Restart NoNewPrivileges; do
    echo "    vaulthalla.service $key=$(unit_value "$(installed_unit vaulthalla.service)" "$key")"
done
expect_eq "vaulthalla.service runs as" "vaulthalla vaulthalla tss" \
    "$(for k in User Group SupplementaryGroups; do unit_value "$(installed_unit vaulthalla.service)" $k; done | xargs)"
check "vaulthalla.service unmounts the FUSE mount point when it stops" \
    sh -c "grep -q '^ExecStopPost=.*fusermount3 -uz /mnt/vaulthalla' '$(installed_unit vaulthalla.service)'"
expect_eq "vaulthalla-swtpm.service runs only without a TPM" "!/dev/tpmrm0" \
    "$(grep -m1 '^ConditionPathExists=!' "$(installed_unit vaulthalla-swtpm.service)" | cut -d= -f2)"

# ---------------------------------------------------------------------------------------------
step "Run the installed units' ExecStart= as systemd would"
# The software TPM, when this machine has none and its ports are free: the node then seals its
# master key with it, configured as config.yaml's comments describe.
use_swtpm=yes
if [ -e /dev/tpmrm0 ]; then
    use_swtpm=no
    note "this machine has a TPM (/dev/tpmrm0): vaulthalla-swtpm.service would skip itself"
elif ! command -v swtpm >/dev/null; then
    use_swtpm=no
    note "swtpm is not installed: the node uses its software key"
else
    for port in "${SWTPM_PORTS[@]}"; do
        if ! port_free "$port"; then
            use_swtpm=no
            note "port $port is taken: the node uses its software key"
        fi
    done
fi
if [ "$use_swtpm" = yes ]; then
    make_unit_dir vaulthalla-swtpm.service RuntimeDirectory /run
    make_unit_dir vaulthalla-swtpm.service StateDirectory /var/lib
    line=$(exec_start vaulthalla-swtpm.service)
    read -r -a swtpm_cmd <<<"$line"
    echo "    runuser -u $SERVICE_USER -- ${swtpm_cmd[*]}"
    (umask 0077 && runuser -u "$SERVICE_USER" -- "${swtpm_cmd[@]}") ||
        fail "the swtpm unit's ExecStart failed"
    pidfile=$(unit_value "$(installed_unit vaulthalla-swtpm.service)" PIDFile)
    SWTPM_PID=$(cat "$pidfile")
    check "swtpm wrote its PIDFile= and runs as $SERVICE_USER" \
        test "$(ps -o user= -p "$SWTPM_PID")" = "$SERVICE_USER"
    for port in "${SWTPM_PORTS[@]}"; do
        check "swtpm listens on 127.0.0.1:$port once its start returns" \
            test -n "$(ss -Htln "src 127.0.0.1 and sport = :$port")"
    done
    set_setting keys.provider tpm
    set_setting keys.tpm_tcti '"swtpm:host=127.0.0.1,port=2321"'
fi

# The gateway on loopback only, on 39000 unless that is taken; the admin listener (loopback by
# default) moves too if its port is taken.
S3_PORT=39000
while ! port_free "$S3_PORT"; do S3_PORT=$((S3_PORT + 1)); done
ADMIN_PORT=39001
while ! port_free "$ADMIN_PORT" || [ "$ADMIN_PORT" = "$S3_PORT" ]; do ADMIN_PORT=$((ADMIN_PORT + 1)); done
set_setting s3_gateway.host "$S3_HOST"
[ "$S3_PORT" = 39000 ] || set_setting s3_gateway.port "$S3_PORT"
[ "$ADMIN_PORT" = 39001 ] || set_setting admin.port "$ADMIN_PORT"
ENDPOINT="http://$S3_HOST:$S3_PORT"

make_unit_dir vaulthalla.service RuntimeDirectory /run
line=$(exec_start vaulthalla.service)
read -r -a node_cmd <<<"$line"
expect_eq "vaulthalla.service ExecStart=" "/usr/bin/vaulthalla --config /etc/vaulthalla/config.yaml" \
    "${node_cmd[*]}"
echo "    setpriv (as $SERVICE_USER, CAP_SYS_ADMIN) -- ${node_cmd[*]}"
(umask 0077 && as_service "${node_cmd[@]}") >"$WORK/node.log" 2>&1 &
NODE_RUNNER=$!
for _ in $(seq $((START_TIMEOUT * 10))); do
    [ -S /run/vaulthalla/control.sock ] && break
    kill -0 "$NODE_RUNNER" 2>/dev/null || fail "the node exited:$(printf '\n'; cat "$WORK/node.log")"
    sleep 0.1
done
check "the node opened its control socket" test -S /run/vaulthalla/control.sock
expect_eq "the control socket" "660 vaulthalla vaulthalla" "$(stat_of /run/vaulthalla/control.sock)"
check "the node runs as $SERVICE_USER" \
    test "$(ps -o user= -p "$NODE_RUNNER" | tr -d ' ')" = "$SERVICE_USER"

step "Drive the node: vh as root, then the AWS CLI"
check "vh status" vh status
# (Its exit status says whether every enabled service runs; `vh status` above checked that.)
status_json=$(vh status --json || true)
provider=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["key_provider"])' <<<"$status_json")
if [ "$use_swtpm" = yes ]; then
    expect_eq "the master key is sealed by the software TPM" tpm "$provider"
else
    echo "    key provider: $provider"
fi
check "vh s3-gateway enable" vh s3-gateway enable
check "enable wrote s3_gateway.enabled into config.yaml" \
    grep -qx '  enabled: true' /etc/vaulthalla/config.yaml
check "config.yaml kept its comments" grep -q '^# Vaulthalla node configuration' /etc/vaulthalla/config.yaml
expect_eq "config.yaml after the node rewrote it" "640 vaulthalla vaulthalla" \
    "$(stat_of /etc/vaulthalla/config.yaml)"
creds=$(vh s3-gateway creds create ci --json) || fail "vh s3-gateway creds create ci --json"
pass "vh s3-gateway creds create ci --json"
ACCESS_KEY=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["access_key_id"])' <<<"$creds")
SECRET_KEY=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["secret_access_key"])' <<<"$creds")
check "vh s3-gateway bucket create-local archive" vh s3-gateway bucket create-local archive

# The AWS CLI, kept from this machine's own AWS settings and from any metadata service.
mkdir -m 0700 "$WORK/aws"
printf '[default]\nregion = us-east-1\n' >"$WORK/aws/config"
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
    "$ACCESS_KEY" "$SECRET_KEY" >"$WORK/aws/credentials"
aws_cli() {
    env -u AWS_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
        -u AWS_DEFAULT_REGION -u AWS_REGION -u AWS_ENDPOINT_URL -u AWS_CA_BUNDLE \
        AWS_CONFIG_FILE="$WORK/aws/config" AWS_SHARED_CREDENTIALS_FILE="$WORK/aws/credentials" \
        AWS_EC2_METADATA_DISABLED=true \
        aws --endpoint-url "$ENDPOINT" "$@"
}
buckets=$(aws_cli s3api list-buckets --query 'Buckets[].Name' --output text) ||
    fail "aws s3api list-buckets"
expect_eq "aws s3api list-buckets" archive "$buckets"
head -c 1048576 /dev/urandom >"$WORK/object.bin"
check "aws s3 cp (upload)" aws_cli s3 cp --only-show-errors "$WORK/object.bin" s3://archive/dir/object.bin
check "aws s3 cp (download)" aws_cli s3 cp --only-show-errors s3://archive/dir/object.bin "$WORK/back.bin"
check "the downloaded object is the uploaded one" cmp "$WORK/object.bin" "$WORK/back.bin"
listing=$(aws_cli s3 ls --recursive s3://archive) || fail "aws s3 ls"
echo "    $listing"
check "aws s3 ls shows the object" grep -q ' 1048576 dir/object.bin$' <<<"$listing"
check "no file in the data directory holds the object's bytes in plaintext" python3 - \
    "$WORK/object.bin" /var/lib/vaulthalla <<'PY'
import os, sys
needle = open(sys.argv[1], "rb").read()[4096:4160]
for root, _, files in os.walk(sys.argv[2]):
    for name in files:
        with open(os.path.join(root, name), "rb") as file:
            if needle in file.read():
                sys.exit(f"plaintext found in {os.path.join(root, name)}")
PY
check "aws s3 rm" aws_cli s3 rm --only-show-errors s3://archive/dir/object.bin
expect_eq "aws s3 ls after rm" "" "$(aws_cli s3 ls --recursive s3://archive)"

step "Stop the node"
stop_node
check "the node removed its control socket" test ! -e /run/vaulthalla/control.sock
if [ -n "$SWTPM_PID" ]; then
    kill -TERM "$SWTPM_PID"
    for _ in $(seq 50); do kill -0 "$SWTPM_PID" 2>/dev/null || break; sleep 0.1; done
    check "swtpm stopped" sh -c "! kill -0 $SWTPM_PID 2>/dev/null"
    SWTPM_PID=
fi

# ---------------------------------------------------------------------------------------------
step "apt-get remove: the data and the config stay"
apt-get remove -y -qq vaulthalla >"$WORK/apt.log" 2>&1 || fail "apt-get remove:$(cat "$WORK/apt.log")"
expect_eq "package state after remove" "deinstall ok config-files" "$(deb_status)"
check "the binaries are gone" test ! -e /usr/bin/vaulthalla -a ! -e /usr/bin/vh
check "the units are gone" test ! -e /usr/lib/systemd/system/vaulthalla.service
check "the data stays" test -s /var/lib/vaulthalla/meta.db
check "the config stays, with the operator's edits" \
    grep -qx "  host: $S3_HOST" /etc/vaulthalla/config.yaml
check "the user stays" getent passwd "$SERVICE_USER"

step "apt-get purge: data, config and user go"
apt-get purge -y -qq vaulthalla >"$WORK/apt.log" 2>&1 || fail "apt-get purge:$(cat "$WORK/apt.log")"
expect_eq "package state after purge" "" "$(deb_status | grep -v '^unknown ok not-installed$' || true)"
for path in /var/lib/vaulthalla /etc/vaulthalla /run/vaulthalla /mnt/vaulthalla; do
    check "$path is gone" test ! -e "$path"
done
check "user $SERVICE_USER is gone" sh -c "! getent passwd $SERVICE_USER"
check "group $SERVICE_USER is gone" sh -c "! getent group $SERVICE_USER"
check "group tss stays" getent group tss

# ---------------------------------------------------------------------------------------------
step "Install the .rpm (rpm with a private database)"
# Debian's rpm insists on --force-debian to install; the dependencies are Debian's packages,
# which this database does not know.
rpm_cmd -i --nodeps --force-debian "$RPM" >"$WORK/rpm.log" 2>&1 || fail "rpm -i:$(cat "$WORK/rpm.log")"
check "rpm -V: the installed files are as packaged" rpm_cmd -V --nodeps vaulthalla
for bin in vaulthalla vh; do
    check "the rpm's $bin is stripped" sh -c "file -b /usr/bin/$bin | grep -q ', stripped'"
done
check "%pre created user $SERVICE_USER, in group tss" \
    sh -c "id -nG $SERVICE_USER | tr ' ' '\n' | grep -qx tss"
expect_eq "/var/lib/vaulthalla (rpm)" "700 vaulthalla vaulthalla" "$(stat_of /var/lib/vaulthalla)"
expect_eq "/etc/vaulthalla (rpm)" "750 vaulthalla vaulthalla" "$(stat_of /etc/vaulthalla)"
expect_eq "/etc/vaulthalla/config.yaml (rpm)" "640 vaulthalla vaulthalla" \
    "$(stat_of /etc/vaulthalla/config.yaml)"
expect_eq "/mnt/vaulthalla (rpm)" "755 vaulthalla vaulthalla" "$(stat_of /mnt/vaulthalla)"
set_setting s3_gateway.host "$S3_HOST"
[ "$ADMIN_PORT" = 39001 ] || set_setting admin.port "$ADMIN_PORT"
make_unit_dir vaulthalla.service RuntimeDirectory /run
line=$(exec_start vaulthalla.service)
read -r -a node_cmd <<<"$line"
(umask 0077 && as_service "${node_cmd[@]}") >"$WORK/node.log" 2>&1 &
NODE_RUNNER=$!
for _ in $(seq $((START_TIMEOUT * 10))); do
    [ -S /run/vaulthalla/control.sock ] && break
    kill -0 "$NODE_RUNNER" 2>/dev/null || fail "the node exited:$(printf '\n'; cat "$WORK/node.log")"
    sleep 0.1
done
check "the rpm's node answers vh status" vh status
stop_node
rpm_cmd -e vaulthalla >"$WORK/rpm.log" 2>&1 || fail "rpm -e:$(cat "$WORK/rpm.log")"
check "rpm -e removed the binaries" test ! -e /usr/bin/vaulthalla -a ! -e /usr/bin/vh
check "rpm -e keeps the data" test -s /var/lib/vaulthalla/meta.db
check "rpm -e keeps the edited config as config.yaml.rpmsave" \
    grep -qx "  host: $S3_HOST" /etc/vaulthalla/config.yaml.rpmsave
check "rpm -e keeps the user" getent passwd "$SERVICE_USER"
# RPM has no purge: what an operator deletes by hand, the cleanup deletes.

printf '\nvalidate: %d passed, 0 failed\n' "$PASSED"
