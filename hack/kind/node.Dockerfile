# The kind node image drill builds without a registry (hack/kind-images.sh fills
# in @BASE@ and @PAUSE@). It follows kind's own base image
# (sigs.k8s.io/kind images/base/Dockerfile): kind's node files, systemd as PID 1
# behind kind's entrypoint, containerd with kind's configuration; here with
# Debian's containerd, runc and CNI plugins, and Kubernetes' node commands
# built from tools/kube.
FROM @BASE@
COPY kind-files/usr/local/bin/ /usr/local/bin/
COPY kind-files/kind/ /kind/
COPY kind-files/etc/ /etc/
RUN chmod 755 /kind /kind/bin /kind/bin/* /usr/local/bin/* \
    && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \
    && rm -f /lib/systemd/system/multi-user.target.wants/* \
    && rm -f /etc/systemd/system/*.wants/* \
    && rm -f /lib/systemd/system/local-fs.target.wants/* \
    && rm -f /lib/systemd/system/sockets.target.wants/*udev* \
    && rm -f /lib/systemd/system/sockets.target.wants/*initctl* \
    && rm -f /lib/systemd/system/basic.target.wants/* \
    && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \
    && ln -sf /usr/lib/systemd/systemd /sbin/init \
    && ln -sf /usr/bin/containerd /usr/local/bin/containerd \
    && mkdir -p /opt/cni/bin && ln -sf /usr/lib/cni/* /opt/cni/bin/ \
    && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
    && systemctl mask systemd-binfmt.service \
    && mkdir -p /etc/kubernetes/manifests
COPY bin/kubelet bin/kubeadm bin/kubectl /usr/bin/
# containerd runs runc from PATH; /usr/local/sbin comes first. The wrapper
# passes everything through unless the host's bounding set lacks a capability
# a privileged pod (kube-proxy) asks for, and then drops only that one.
COPY bin/runc-caps /usr/local/sbin/runc
COPY manifests/ /kind/manifests/
# Images drill pushes to its local registry (Istio, MetalLB, Bookinfo) are
# pulled from it: containerd's per-host configuration (hack/kind/certs.d).
COPY certs.d/ /etc/containerd/certs.d/
COPY version /kind/version
RUN ctr oci spec \
        | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
        | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json \
    && sed -i 's|sandbox_image = .*|sandbox_image = "@PAUSE@"|' /etc/containerd/config.toml \
    && printf '\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n' >> /etc/containerd/config.toml \
    && containerd --version && runc --version | head -1
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]
