# %preun of vaulthalla ($1: 0 on erase, 1 or more on upgrade): on erase, stop the node and drop
# it from boot. An upgrade leaves it running; %postun restarts it.
set -e

if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    # Stopping the node also detaches its FUSE mount (ExecStopPost=).
    systemctl --no-reload disable --now vaulthalla.service || true
    systemctl stop vaulthalla-swtpm.service || true
fi
