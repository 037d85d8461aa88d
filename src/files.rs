//! The CLI's file and DAG commands: `add` (files and `-r` directories streamed from disk in one
//! multipart body, as Kubo's CLI sends them), `get`, `ls`, `resolve`, `dag get|put|stat|resolve|
//! import` and `pin update`. Each builds Kubo's request and prints what `ipfs` prints.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;

use crate::cli::{AddArgs, DagCmd};
use crate::client::{Call, RpcClient, Upload, call};

/// The boundary of the CLI's streamed multipart bodies.
const BOUNDARY: &str = "cairn-cli-upload-5b1e0c7a9f";

/// One entry of an upload, in the order Kubo's CLI sends them (a directory before its entries,
/// names sorted).
enum Entry {
    Dir(String),
    File(String, PathBuf, u64),
    Symlink(String, String),
}

/// `application/x-www-form-urlencoded` escaping, as go-ipfs-files writes `filename`.
fn escape(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The entries under `path` (named `name`), depth first with sorted names; hidden names skipped
/// unless `hidden`.
fn collect(
    path: &Path,
    name: &str,
    recursive: bool,
    hidden: bool,
    out: &mut Vec<Entry>,
) -> anyhow::Result<()> {
    let meta = std::fs::symlink_metadata(path).with_context(|| format!("{}", path.display()))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path)?;
        out.push(Entry::Symlink(
            name.to_string(),
            target.to_string_lossy().into_owned(),
        ));
    } else if meta.is_dir() {
        if !recursive {
            bail!(
                "{} is a directory, use the '-r' flag to specify directories",
                path.display()
            );
        }
        out.push(Entry::Dir(name.to_string()));
        let mut children: Vec<_> = std::fs::read_dir(path)?.collect::<Result<_, _>>()?;
        children.sort_by_key(|e| e.file_name());
        for child in children {
            let child_name = child.file_name().to_string_lossy().into_owned();
            if child_name.starts_with('.') && !hidden {
                continue;
            }
            collect(
                &child.path(),
                &format!("{name}/{child_name}"),
                recursive,
                hidden,
                out,
            )?;
        }
    } else if meta.is_file() {
        out.push(Entry::File(
            name.to_string(),
            path.to_path_buf(),
            meta.len(),
        ));
    } else {
        bail!("{}: unsupported file type", path.display());
    }
    Ok(())
}

/// A part's header.
fn part_head(name: &str, content_type: &str) -> Bytes {
    Bytes::from(format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: {content_type}\r\n\r\n",
        escape(name)
    ))
}

/// The multipart body of `entries`, reading each file from disk only when its part is sent.
fn upload(entries: Vec<Entry>, stdin: Option<String>) -> Upload {
    let parts = futures::stream::iter(entries).flat_map(|entry| {
        let items: futures::stream::BoxStream<'static, std::io::Result<Bytes>> = match entry {
            Entry::Dir(name) => futures::stream::iter([
                Ok(part_head(&name, "application/x-directory")),
                Ok(Bytes::from_static(b"\r\n")),
            ])
            .boxed(),
            Entry::Symlink(name, target) => futures::stream::iter([
                Ok(part_head(&name, "application/symlink")),
                Ok(Bytes::from(target)),
                Ok(Bytes::from_static(b"\r\n")),
            ])
            .boxed(),
            Entry::File(name, path, _) => {
                let head =
                    futures::stream::iter([Ok(part_head(&name, "application/octet-stream"))]);
                let body = futures::stream::once(async move { tokio::fs::File::open(path).await })
                    .map(|file| match file {
                        Ok(f) => tokio_util::io::ReaderStream::with_capacity(f, 1 << 20).boxed(),
                        Err(e) => futures::stream::iter([Err(e)]).boxed(),
                    })
                    .flatten();
                head.chain(body)
                    .chain(futures::stream::iter([Ok(Bytes::from_static(b"\r\n"))]))
                    .boxed()
            }
        };
        items
    });
    let stdin_part = stdin.map(|name| {
        let body = tokio_util::io::ReaderStream::with_capacity(tokio::io::stdin(), 1 << 20);
        futures::stream::iter([Ok(part_head(&name, "application/octet-stream"))])
            .chain(body)
            .chain(futures::stream::iter([Ok(Bytes::from_static(b"\r\n"))]))
    });
    let tail = futures::stream::iter([Ok(Bytes::from(format!("--{BOUNDARY}--\r\n")))]);
    let stream = match stdin_part {
        Some(s) => parts.chain(s).chain(tail).boxed(),
        None => parts.chain(tail).boxed(),
    };
    Upload {
        boundary: BOUNDARY.to_string(),
        stream,
    }
}

/// `cairn add`.
pub async fn add(rpc: &RpcClient, args: AddArgs, json: bool) -> anyhow::Result<()> {
    let mut entries = Vec::new();
    for path in &args.paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.to_string_lossy().into_owned());
        collect(path, &name, args.recursive, args.hidden, &mut entries)?;
    }
    let total: u64 = entries
        .iter()
        .map(|e| match e {
            Entry::File(_, _, n) => *n,
            _ => 0,
        })
        .sum();
    let stdin = args
        .paths
        .is_empty()
        .then(|| args.stdin_name.clone().unwrap_or_default());
    let bar_wanted = args
        .progress
        .unwrap_or_else(|| std::io::stderr().is_terminal())
        && !args.quieter
        && !args.silent;
    let mut c: Call = call()
        .opt("pin", args.pin)
        .opt("progress", bar_wanted)
        .opt("only-hash", args.only_hash)
        .opt("wrap-with-directory", args.wrap)
        .opt("hidden", args.hidden)
        .opt("trickle", args.trickle)
        .opt("inline", args.inline)
        .opt("silent", args.silent);
    if let Some(v) = &args.chunker {
        c = c.opt("chunker", v);
    }
    if let Some(v) = args.raw_leaves {
        c = c.opt("raw-leaves", v);
    }
    if let Some(v) = args.cid_version {
        c = c.opt("cid-version", v);
    }
    if let Some(v) = &args.hash {
        c = c.opt("hash", v);
    }
    if let Some(v) = args.inline_limit {
        c = c.opt("inline-limit", v);
    }
    if let Some(v) = &args.pin_name {
        c = c.opt("pin-name", v);
    }
    let c = c.upload(upload(entries, stdin));
    // indicatif draws only on a terminal; elsewhere the bar is hidden and lines are plain.
    let bar = if bar_wanted {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bytes:>10} / {total_bytes:<10} [{bar:40}] {percent:>3}% {binary_bytes_per_sec}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        Some(bar)
    } else {
        None
    };
    // Bytes of files already finished, so a file's progress adds to what came before it.
    let mut done = 0u64;
    let mut last = None;
    let result = rpc
        .stream("add", c, |v: Value| {
            if let Some(bytes) = v["Bytes"].as_u64() {
                if let Some(bar) = &bar {
                    bar.set_position(done + bytes);
                }
                if v.get("Hash").is_none() {
                    return Ok(());
                }
            }
            let (Some(hash), name) = (v["Hash"].as_str(), v["Name"].as_str().unwrap_or("")) else {
                return Ok(());
            };
            if let Some(bar) = &bar {
                done = bar.position();
            }
            last = Some(hash.to_string());
            if args.quieter || args.silent {
                return Ok(());
            }
            let line = if json {
                v.to_string()
            } else if args.quiet {
                hash.to_string()
            } else {
                format!("added {hash} {name}")
            };
            match &bar {
                Some(bar) => bar.println(line),
                None => out!("{line}"),
            }
            Ok(())
        })
        .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result?;
    if args.quieter
        && !args.silent
        && let Some(last) = last
    {
        out!("{last}");
    }
    Ok(())
}

/// `cairn get`: unpacks the tar stream into `output` (or writes it with `--archive`).
pub async fn get(
    rpc: &RpcClient,
    path: String,
    output: Option<PathBuf>,
    archive: bool,
    compress: bool,
    level: Option<u32>,
) -> anyhow::Result<()> {
    let default_name = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(&path)
        .to_string();
    let mut c = call()
        .arg(&path)
        .opt("archive", archive)
        .opt("compress", compress);
    if let Some(l) = level {
        c = c.opt("compression-level", l);
    }
    if archive || compress {
        let ext = match (archive, compress) {
            (true, true) => ".tar.gz",
            (true, false) => ".tar",
            _ => ".gz",
        };
        let out = output.unwrap_or_else(|| PathBuf::from(format!("{default_name}{ext}")));
        let mut file =
            std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?;
        rpc.raw("get", c, |chunk| Ok(file.write_all(chunk)?))
            .await?;
        file.sync_all()?;
        out!("Saving archive to {}", out.display());
        return Ok(());
    }
    // The tar stream is unpacked as it arrives by a blocking thread reading from a pipe.
    let target = output.unwrap_or_else(|| PathBuf::from(&default_name));
    out!("Saving file(s) to {}", target.display());
    let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(16);
    let unpack_to = target.clone();
    let unpacker = tokio::task::spawn_blocking(move || unpack(rx, &unpack_to, &default_name));
    let sent = rpc
        .raw("get", c, |chunk| {
            tx.send(Bytes::copy_from_slice(chunk))
                .map_err(|_| anyhow::anyhow!("unpacking stopped"))
        })
        .await;
    drop(tx);
    let unpacked = unpacker.await?;
    sent?;
    unpacked
}

/// A `Read` over chunks from a channel.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.recv() {
                Ok(b) => self.current = b,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// Unpacks a tar stream whose entries are named under `root_name` into `target` (the root
/// entry becomes `target` itself), refusing entries that would land outside it.
fn unpack(
    rx: std::sync::mpsc::Receiver<Bytes>,
    target: &Path,
    root_name: &str,
) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(ChannelReader {
        rx,
        current: Bytes::new(),
    });
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let rel = path.strip_prefix(root_name).unwrap_or(&path).to_path_buf();
        if rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            bail!(
                "refusing to write {}: outside the output directory",
                path.display()
            );
        }
        let dest = if rel.as_os_str().is_empty() {
            target.to_path_buf()
        } else {
            target.join(&rel)
        };
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        entry.unpack(&dest)?;
    }
    Ok(())
}

/// `cairn ls`.
pub async fn ls(
    rpc: &RpcClient,
    paths: Vec<String>,
    headers: bool,
    resolve_type: bool,
    size: bool,
    stream: bool,
    json: bool,
) -> anyhow::Result<()> {
    let multiple = paths.len() > 1;
    let c = paths.iter().fold(
        call()
            .opt("resolve-type", resolve_type)
            .opt("size", size)
            .opt("stream", stream),
        |c, p| c.arg(p),
    );
    let print_link = |l: &Value| {
        let name = l["Name"].as_str().unwrap_or("");
        let name = if l["Type"] == 1 {
            format!("{name}/")
        } else {
            name.to_string()
        };
        if size {
            out!(
                "{} {} {}",
                l["Hash"].as_str().unwrap_or(""),
                l["Size"],
                name
            );
        } else {
            out!("{} {}", l["Hash"].as_str().unwrap_or(""), name);
        }
    };
    let v = if stream {
        return rpc
            .stream("ls", c, |v| {
                if json {
                    out!("{v}");
                } else if let Some(links) = v["Objects"][0]["Links"].as_array() {
                    links.iter().for_each(print_link);
                }
                Ok(())
            })
            .await;
    } else {
        rpc.json("ls", c).await?
    };
    if json {
        out!("{v}");
        return Ok(());
    }
    for object in v["Objects"].as_array().into_iter().flatten() {
        if multiple {
            out!("{}:", object["Hash"].as_str().unwrap_or(""));
        }
        if headers {
            out!("{}", if size { "Hash Size Name" } else { "Hash Name" });
        }
        object["Links"]
            .as_array()
            .into_iter()
            .flatten()
            .for_each(print_link);
        if multiple {
            out!("");
        }
    }
    Ok(())
}

/// `cairn resolve`.
pub async fn resolve(rpc: &RpcClient, path: String, json: bool) -> anyhow::Result<()> {
    let v = rpc.json("resolve", call().arg(path)).await?;
    if json {
        out!("{v}");
    } else {
        out!("{}", v["Path"].as_str().unwrap_or(""));
    }
    Ok(())
}

/// Reads files (or stdin) for commands that send file parts.
fn read_inputs(files: &[PathBuf]) -> anyhow::Result<Vec<Vec<u8>>> {
    if files.is_empty() {
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut data)?;
        return Ok(vec![data]);
    }
    files
        .iter()
        .map(|f| std::fs::read(f).with_context(|| format!("reading {}", f.display())))
        .collect()
}

/// `cairn dag ...` (except `export`, which main handles with the other raw outputs).
pub async fn dag(rpc: &RpcClient, cmd: DagCmd, json: bool) -> anyhow::Result<()> {
    match cmd {
        DagCmd::Export { cid } => {
            rpc.raw("dag/export", call().arg(cid), crate::write_stdout)
                .await?;
        }
        DagCmd::Get { path, output_codec } => {
            rpc.raw(
                "dag/get",
                call().arg(path).opt("output-codec", output_codec),
                crate::write_stdout,
            )
            .await?;
        }
        DagCmd::Put {
            files,
            input_codec,
            store_codec,
            pin,
        } => {
            let c = read_inputs(&files)?.into_iter().fold(
                call()
                    .opt("input-codec", input_codec)
                    .opt("store-codec", store_codec)
                    .opt("pin", pin),
                |c, d| c.file(d),
            );
            rpc.stream("dag/put", c, |v| {
                if json {
                    out!("{v}");
                } else {
                    out!("{}", v["Cid"]["/"].as_str().unwrap_or(""));
                }
                Ok(())
            })
            .await?;
        }
        DagCmd::Stat { paths } => {
            let c = paths
                .iter()
                .fold(call().opt("progress", false), |c, p| c.arg(p));
            let v = rpc.json("dag/stat", c).await?;
            if json {
                out!("{v}");
            } else {
                out!("CID                                           \tBlocks         \tSize");
                for s in v["DagStats"].as_array().into_iter().flatten() {
                    out!(
                        "{}\t{}\t{}",
                        s["Cid"]["/"].as_str().unwrap_or(""),
                        s["NumBlocks"],
                        s["Size"]
                    );
                }
            }
        }
        DagCmd::Resolve { path } => {
            let v = rpc.json("dag/resolve", call().arg(path)).await?;
            if json {
                out!("{v}");
            } else {
                let rem = v["RemPath"].as_str().unwrap_or("");
                let cid = v["Cid"]["/"].as_str().unwrap_or("");
                if rem.is_empty() {
                    out!("{cid}");
                } else {
                    out!("{cid}/{rem}");
                }
            }
        }
        DagCmd::Import {
            files,
            pin_roots,
            stats,
        } => {
            let c = read_inputs(&files)?.into_iter().fold(
                call().opt("pin-roots", pin_roots).opt("stats", stats),
                |c, d| c.file(d),
            );
            rpc.stream("dag/import", c, |v| {
                if json {
                    out!("{v}");
                } else if let Some(root) = v.get("Root") {
                    let cid = root["Cid"]["/"].as_str().unwrap_or("");
                    match root["PinErrorMsg"].as_str().filter(|m| !m.is_empty()) {
                        Some(e) => out!("pinned root\t{cid}\tFAILED: {e}"),
                        None => out!("Pinned root\t{cid}\tsuccess"),
                    }
                } else if let Some(s) = v.get("Stats") {
                    out!(
                        "Imported {} blocks ({} bytes)",
                        s["BlockCount"],
                        s["BlockBytesCount"]
                    );
                }
                Ok(())
            })
            .await?;
        }
    }
    Ok(())
}

/// `cairn pin update`.
pub async fn pin_update(
    rpc: &RpcClient,
    from: String,
    to: String,
    unpin: bool,
    json: bool,
) -> anyhow::Result<()> {
    let v = rpc
        .json("pin/update", call().arg(from).arg(to).opt("unpin", unpin))
        .await?;
    if json {
        out!("{v}");
    } else if let Some(pins) = v["Pins"].as_array() {
        let names: Vec<&str> = pins.iter().filter_map(|p| p.as_str()).collect();
        out!("updated {}", names.join(" to "));
    }
    Ok(())
}
