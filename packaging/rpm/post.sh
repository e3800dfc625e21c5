# %post of vaulthalla ($1: 1 on install, 2 or more on upgrade): the node's directories, and the
# systemd and udev pick-up. Safe to run any number of times.
set -e

SERVICE_USER=vaulthalla
OWNER="$SERVICE_USER:$SERVICE_USER"

mkdir -p /var/lib/vaulthalla /etc/vaulthalla /run/vaulthalla
chown "$OWNER" /var/lib/vaulthalla /etc/vaulthalla /run/vaulthalla
chmod 0700 /var/lib/vaulthalla
# The node rewrites config.yaml itself (`vh s3-gateway enable`): a temporary file in this
# directory renamed over it, so the directory and the file belong to the service user.
chmod 0750 /etc/vaulthalla /run/vaulthalla
if [ -f /etc/vaulthalla/config.yaml ]; then
    chown "$OWNER" /etc/vaulthalla/config.yaml
    chmod 0640 /etc/vaulthalla/config.yaml
fi
# A mounted vault is left alone: its root belongs to the FUSE file system.
if ! grep -qs " /mnt/vaulthalla " /proc/self/mounts; then
    mkdir -p /mnt/vaulthalla
    chown "$OWNER" /mnt/vaulthalla
    chmod 0755 /mnt/vaulthalla
fi

if command -v udevadm >/dev/null 2>&1 && [ -S /run/udev/control ]; then
    udevadm control --reload-rules || true
    udevadm trigger --action=change --subsystem-match=tpm --subsystem-match=tpmrm || true
fi

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    if [ "$1" -eq 1 ]; then
        # First install: start at boot, but not now; the operator reviews the config first and
        # starts it with `systemctl start vaulthalla`.
        systemctl enable vaulthalla.service
    fi
fi
