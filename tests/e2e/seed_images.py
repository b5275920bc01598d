#!/usr/bin/env python3
"""Push deterministic generated test images into a registry through the HTTP API.

Everything is generated from fixed seeds (random.Random(seed).randbytes), tars are written with
fixed metadata and gzip with mtime=0, manifests are serialised the same way every time: the same
set gives the same digests on every run and on every fresh registry.

Usage:
  seed_images.py --registry http://127.0.0.1:PORT --out images.json [--set small|big|all] [--big-mib N]
  seed_images.py --registry http://127.0.0.1:PORT --blob-only-mib N --blob-repo REPO [--seed S]
      pushes one raw blob of N MiB of random bytes (no manifest) and prints its digest; any
      size: the bytes are generated and streamed 16 MiB at a time, never held whole

Sets: small = alpinetest (latest, 3), docker-v2, multi, multi-docker, artifact;
      evict = test/evict-1..--many, each two random layers, --many-mib MiB in all;
      life  = test/life: prod-N + release-N (N = 1..12), prod-only, two by digest only;
      big   = small + test/big (5 layers of --big-mib MiB, default 20);
      all   = small + test/sizes (layers of 1 KiB, 1 MiB, 8 MiB) + test/big.

images.json is a list, one entry per pushed tag:
  {"repo", "tag", "digest", "media_type", "size",
   "config": {"digest","size","media_type"} | null,       (null for an index)
   "layers": [{"digest","size","media_type"}...],          ([] for an index)
   "children": [{"digest","size","media_type","platform","config","layers","blobs"}...],
   "subject": {"digest","size","media_type"} | null,
   "artifact_type": str | null,
   "blobs": [config + layer digests; for an index every child manifest digest followed by
             that child's config and layers],
   "blob_sizes": {digest: size for every digest in blobs}}
Only the standard library is used.
"""

import argparse
import gzip
import hashlib
import io
import json
import random
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request

MIB = 1024 * 1024
CHUNK = 16 * MIB  # random bytes are generated this many at a time

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
D2_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
D2_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
D2_CONFIG = "application/vnd.docker.container.image.v1+json"
D2_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
SIG_TYPE = "application/vnd.example.signature.v1"

FIXED_MTIME = 1700000000  # 2023-11-14, inside every tar header
CREATED = "2023-11-14T22:13:20Z"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rand_chunks(seed, n):
    """The n bytes of random.Random(seed).randbytes(n), CHUNK bytes at a time. randbytes takes
    its bytes from successive 32-bit words of the generator, so chunks whose size is a multiple
    of 4 concatenate to exactly the single call's bytes, which itself overflows at 256 MiB."""
    r = random.Random(seed)
    while n > 0:
        k = min(n, CHUNK)
        yield r.randbytes(k)
        n -= k


def rand_bytes(seed, n):
    return b"".join(rand_chunks(seed, n))


def make_tar(files):
    """files: list of (path, bytes). Directories for every parent are added first.
    USTAR with fixed owner, mode and mtime, so the bytes depend only on the input."""
    buf = io.BytesIO()
    dirs = []
    for path, _ in files:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.append(d)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for d in dirs:
            ti = tarfile.TarInfo(d + "/")
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            ti.mtime = FIXED_MTIME
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            tf.addfile(ti)
        for path, data in files:
            ti = tarfile.TarInfo(path)
            ti.size = len(data)
            ti.mode = 0o644
            ti.mtime = FIXED_MTIME
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def layer_files(tag, n_random=0, seed=0):
    """A couple of small files, plus n_random bytes of random data when asked."""
    files = [
        ("etc/e2e/%s.txt" % tag, ("layer %s\n" % tag).encode()),
        ("usr/share/e2e/%s/small.bin" % tag, rand_bytes("small:" + tag, 300)),
    ]
    if n_random:
        files.append(("usr/share/e2e/%s/data.bin" % tag, rand_bytes("data:%s:%d" % (tag, seed), n_random)))
    return files


def jdump(obj):
    return json.dumps(obj, indent=2).encode()


def desc(media_type, data=None, digest=None, size=None):
    if data is not None:
        digest, size = sha256(data), len(data)
    return {"mediaType": media_type, "digest": digest, "size": size}


class Registry:
    def __init__(self, base):
        self.base = base.rstrip("/")
        self.pushed = set()  # (repo, digest) already known to be there

    def _req(self, method, url, data=None, headers=None, ok=(200,)):
        if url.startswith("/"):
            url = self.base + url
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                body = r.read()
                status, hdrs = r.status, r.headers
        except urllib.error.HTTPError as e:
            body, status, hdrs = e.read(), e.code, e.headers
        if status not in ok:
            raise RuntimeError("%s %s -> %d %s" % (method, url, status, body[:500].decode("utf-8", "replace")))
        return status, hdrs, body

    def blob_exists(self, repo, digest):
        st, _, _ = self._req("HEAD", "/v2/%s/blobs/%s" % (repo, digest), ok=(200, 404))
        return st == 200

    def push_blob(self, repo, data, digest=None):
        digest = digest or sha256(data)
        if (repo, digest) in self.pushed or self.blob_exists(repo, digest):
            self.pushed.add((repo, digest))
            return digest
        _, hdrs, _ = self._req("POST", "/v2/%s/blobs/uploads/" % repo, data=b"",
                               headers={"Content-Length": "0"}, ok=(202,))
        loc = hdrs["Location"]
        if not loc.startswith("http"):
            loc = self.base + loc
        loc += ("&" if "?" in loc else "?") + urllib.parse.urlencode({"digest": digest})
        self._req("PUT", loc, data=data, ok=(201,),
                  headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
        self.pushed.add((repo, digest))
        return digest

    def push_blob_stream(self, repo, chunks, size):
        """Pushes the size bytes that the iterable chunks yields without holding them: POST an
        upload, one PATCH that streams them (hashing on the way), then PUT ?digest= to commit.
        Returns the digest; the registry checks it against what it received."""
        h = hashlib.sha256()

        def body():
            sent = 0
            for c in chunks:
                h.update(c)
                sent += len(c)
                yield c
            if sent != size:
                raise RuntimeError("generated %d bytes, announced %d" % (sent, size))

        _, hdrs, _ = self._req("POST", "/v2/%s/blobs/uploads/" % repo, data=b"",
                               headers={"Content-Length": "0"}, ok=(202,))
        loc = self._absolute(hdrs["Location"])
        if size:
            _, hdrs, _ = self._req("PATCH", loc, data=body(), ok=(202,),
                                   headers={"Content-Type": "application/octet-stream",
                                            "Content-Length": str(size),
                                            "Content-Range": "0-%d" % (size - 1)})
            loc = self._absolute(hdrs["Location"])
        else:
            for c in chunks:
                h.update(c)
        digest = "sha256:" + h.hexdigest()
        loc += ("&" if "?" in loc else "?") + urllib.parse.urlencode({"digest": digest})
        self._req("PUT", loc, data=b"", ok=(201,), headers={"Content-Length": "0"})
        self.pushed.add((repo, digest))
        return digest

    def _absolute(self, loc):
        return loc if loc.startswith("http") else self.base + loc

    def push_manifest(self, repo, ref, media_type, data):
        _, hdrs, _ = self._req("PUT", "/v2/%s/manifests/%s" % (repo, ref), data=data, ok=(201,),
                               headers={"Content-Type": media_type, "Content-Length": str(len(data))})
        got = hdrs.get("Docker-Content-Digest")
        if got and got != sha256(data):
            raise RuntimeError("registry computed %s for %s:%s, expected %s" % (got, repo, ref, sha256(data)))
        return sha256(data)


class Image:
    """One single-platform image (OCI or Docker v2s2) built in memory."""

    def __init__(self, name, docker=False, arch="amd64", variant=None, layer_specs=None):
        self.docker = docker
        self.blobs = []  # (descriptor, bytes) config first
        layer_specs = layer_specs or [(name + "-1", 0), (name + "-2", 0)]
        layers, diff_ids = [], []
        for tag, n_random in layer_specs:
            tar = make_tar(layer_files(tag, n_random))
            diff_ids.append(sha256(tar))
            if docker:
                data = gzip.compress(tar, compresslevel=6, mtime=0)
                layers.append((desc(D2_LAYER, data), data))
            else:
                layers.append((desc(OCI_LAYER, tar), tar))
        config = {
            "created": CREATED,
            "architecture": arch,
            "os": "linux",
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                               "E2E_IMAGE=" + name],
                       "Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": CREATED, "created_by": "seed_images.py layer %d" % i}
                        for i in range(len(diff_ids))],
        }
        if variant:
            config["variant"] = variant
        cdata = jdump(config)
        cdesc = desc(D2_CONFIG if docker else OCI_CONFIG, cdata)
        self.config = (cdesc, cdata)
        self.layers = layers
        self.media_type = D2_MANIFEST if docker else OCI_MANIFEST
        manifest = {"schemaVersion": 2, "mediaType": self.media_type, "config": cdesc,
                    "layers": [d for d, _ in layers]}
        self.manifest = jdump(manifest)
        self.platform = {"architecture": arch, "os": "linux"}
        if variant:
            self.platform["variant"] = variant

    def descriptor(self):
        return desc(self.media_type, self.manifest)

    def push_blobs(self, reg, repo):
        for d, data in [self.config] + self.layers:
            reg.push_blob(repo, data, d["digest"])

    def info(self):
        return {"config": _d(self.config[0]), "layers": [_d(d) for d, _ in self.layers]}

    def blob_list(self):
        return [self.config[0]] + [d for d, _ in self.layers]


def _d(descriptor):
    return {"digest": descriptor["digest"], "size": descriptor["size"], "media_type": descriptor["mediaType"]}


def record(repo, tag, media_type, manifest, blob_descs, config=None, layers=None, children=None,
           subject=None, artifact_type=None):
    return {
        "repo": repo, "tag": tag, "digest": sha256(manifest), "media_type": media_type,
        "size": len(manifest),
        "config": config, "layers": layers or [], "children": children or [],
        "subject": subject, "artifact_type": artifact_type,
        "blobs": [d["digest"] for d in blob_descs],
        "blob_sizes": {d["digest"]: d["size"] for d in blob_descs},
    }


def push_single(reg, repo, tags, img):
    img.push_blobs(reg, repo)
    out = []
    for tag in tags:
        reg.push_manifest(repo, tag, img.media_type, img.manifest)
        info = img.info()
        out.append(record(repo, tag, img.media_type, img.manifest, img.blob_list(),
                          config=info["config"], layers=info["layers"]))
    return out


def push_index(reg, repo, tag, children, docker):
    media_type = D2_LIST if docker else OCI_INDEX
    manifests, blob_descs, kids = [], [], []
    for img in children:
        img.push_blobs(reg, repo)
        d = reg.push_manifest(repo, sha256(img.manifest), img.media_type, img.manifest)
        cd = img.descriptor()
        assert cd["digest"] == d
        manifests.append(dict(cd, platform=img.platform))
        blob_descs.append(cd)
        blob_descs.extend(img.blob_list())
        info = img.info()
        kids.append(dict(_d(cd), platform=img.platform, config=info["config"], layers=info["layers"],
                         blobs=[x["digest"] for x in img.blob_list()]))
    index = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
    data = jdump(index)
    reg.push_manifest(repo, tag, media_type, data)
    return [record(repo, tag, media_type, data, blob_descs, children=kids)]


def push_artifact(reg, repo, tag, subject_img):
    # The subject must be in the same repository for a referrers-aware registry; push it there
    # by digest (untagged) along with its blobs.
    subject_img.push_blobs(reg, repo)
    reg.push_manifest(repo, sha256(subject_img.manifest), subject_img.media_type, subject_img.manifest)
    empty = b"{}"
    reg.push_blob(repo, empty)
    sig = jdump({"critical": {"identity": {"docker-reference": "library/alpinetest"},
                              "image": {"docker-manifest-digest": sha256(subject_img.manifest)},
                              "type": "e2e signature"}})
    reg.push_blob(repo, sig)
    cdesc = desc(OCI_EMPTY, empty)
    ldesc = desc(SIG_TYPE, sig)
    subject = subject_img.descriptor()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SIG_TYPE,
        "config": cdesc,
        "layers": [ldesc],
        "subject": subject,
        "annotations": {"org.opencontainers.image.created": CREATED},
    }
    data = jdump(manifest)
    reg.push_manifest(repo, tag, OCI_MANIFEST, data)
    return [record(repo, tag, OCI_MANIFEST, data, [cdesc, ldesc], config=_d(cdesc), layers=[_d(ldesc)],
                   subject=_d(subject), artifact_type=SIG_TYPE)]


def seed_evict(reg, count, mib):
    """test/evict-1..COUNT:latest, each two random layers of MIB/2 MiB: distinct images of one
    size, for the byte budget."""
    out = []
    half = mib * MIB // 2
    for i in range(1, count + 1):
        name = "evict-%d" % i
        out += push_single(reg, "test/" + name, ["latest"],
                           Image(name, layer_specs=[(name + "-a", half), (name + "-b", half)]))
    return out


def seed_life(reg):
    """test/life, for the lifecycle rules: twelve small images tagged prod-N and release-N
    (N = 1..12), one tagged prod-only, and two pushed by digest only (tag null in
    images.json)."""
    out = []
    for i in range(1, 13):
        out += push_single(reg, "test/life", ["prod-%d" % i, "release-%d" % i], Image("life-%d" % i))
    out += push_single(reg, "test/life", ["prod-only"], Image("life-prod-only"))
    for name in ("life-untagged-1", "life-untagged-2"):
        img = Image(name)
        img.push_blobs(reg, "test/life")
        reg.push_manifest("test/life", sha256(img.manifest), img.media_type, img.manifest)
        info = img.info()
        out.append(record("test/life", None, img.media_type, img.manifest, img.blob_list(),
                          config=info["config"], layers=info["layers"]))
    return out


def seed(reg, which, big_mib, many=0, many_mib=0):
    if which == "evict":
        return seed_evict(reg, many, many_mib)
    if which == "life":
        return seed_life(reg)
    out = []
    alpine = Image("alpinetest")
    out += push_single(reg, "library/alpinetest", ["latest", "3"], alpine)
    out += push_single(reg, "test/docker-v2", ["latest"], Image("docker-v2", docker=True))
    out += push_index(reg, "test/multi", "latest",
                      [Image("multi-amd64"), Image("multi-arm64", arch="arm64", variant="v8")], docker=False)
    out += push_index(reg, "test/multi-docker", "latest",
                      [Image("multid-amd64", docker=True),
                       Image("multid-arm64", docker=True, arch="arm64", variant="v8")], docker=True)
    out += push_artifact(reg, "test/artifact", "sig", alpine)
    if which == "all":
        out += push_single(reg, "test/sizes", ["latest"],
                           Image("sizes", layer_specs=[("sizes-1k", 1024), ("sizes-1m", MIB), ("sizes-8m", 8 * MIB)]))
    if which in ("big", "all"):
        out += push_single(reg, "test/big", ["latest"],
                           Image("big", layer_specs=[("big-%d" % i, big_mib * MIB) for i in range(1, 6)]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registry", required=True, help="base URL, e.g. http://127.0.0.1:5000")
    ap.add_argument("--out", help="where to write images.json")
    ap.add_argument("--set", dest="which", choices=["small", "big", "all", "evict", "life"],
                    default="small")
    ap.add_argument("--many", type=int, default=8, help="evict: how many images")
    ap.add_argument("--many-mib", type=int, default=50, help="evict: MiB per image")
    ap.add_argument("--big-mib", type=int, default=20, help="size of each of test/big's 5 layers")
    ap.add_argument("--blob-only-mib", type=int, help="push one raw blob of N MiB and print its digest")
    ap.add_argument("--blob-repo", help="repository for --blob-only-mib")
    ap.add_argument("--seed", default="0", help="varies the --blob-only-mib content (default 0)")
    args = ap.parse_args()
    reg = Registry(args.registry)
    if args.blob_only_mib is not None:
        if not args.blob_repo:
            ap.error("--blob-only-mib needs --blob-repo")
        size = args.blob_only_mib * MIB
        chunks = rand_chunks("blob:%d:%s" % (args.blob_only_mib, args.seed), size)
        print(reg.push_blob_stream(args.blob_repo, chunks, size))
        return 0
    if not args.out:
        ap.error("--out is required")
    images = seed(reg, args.which, args.big_mib, args.many, args.many_mib)
    with open(args.out, "w") as f:
        json.dump(images, f, indent=2)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
