//! The command line, with clap: `cairn init`, `cairn daemon`, `cairn shutdown`, and client
//! commands that mirror `ipfs` and talk to a running daemon over its RPC.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// cairn: an embeddable, Kubo-compatible IPFS node.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about, propagate_version = true)]
pub struct Cli {
    /// The repo directory.
    #[arg(long, env = "CAIRN_PATH", global = true)]
    pub repo_dir: Option<PathBuf>,
    /// The daemon's RPC address (multiaddr like /ip4/127.0.0.1/tcp/5001, or a URL); default: the
    /// repo's `api` file.
    #[arg(long, global = true)]
    pub api: Option<String>,
    /// An `API.Authorizations` secret to send (`bearer:<token>` or `basic:<user>:<password>`).
    #[arg(long, global = true)]
    pub api_auth: Option<String>,
    /// Output encoding: `text` (as the ipfs CLI prints) or `json` (the RPC's JSON).
    #[arg(
        long = "enc",
        alias = "encoding",
        global = true,
        default_value = "text"
    )]
    pub encoding: Encoding,
    /// Log level (a `RUST_LOG`-style filter also works through the RUST_LOG variable).
    #[arg(long, global = true)]
    pub log_level: Option<String>,
    /// Log format.
    #[arg(long, global = true, default_value = "text")]
    pub log_format: LogFormat,
    /// Kubo's global `offline` option: the daemon reads only its local store for this command.
    #[arg(long, global = true)]
    pub offline: bool,
    /// Kubo's global `timeout` option: a Go duration such as `30s` or `1m30s`, after which the
    /// daemon gives up on the command.
    #[arg(long, global = true)]
    pub timeout: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Encoding {
    /// Human-readable, like the ipfs CLI.
    Text,
    /// The RPC's JSON.
    Json,
}

/// Log formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a repo: identity and a config with Kubo's defaults.
    Init {
        /// Profiles to apply, comma-separated: test, server, lan.
        #[arg(long, short = 'p', value_delimiter = ',')]
        profile: Vec<String>,
        /// The identity's key algorithm: ed25519 (Kubo's default) or rsa, as `ipfs init -a`.
        #[arg(long, short = 'a', default_value = "ed25519")]
        algorithm: String,
        /// RSA modulus size in bits (Kubo's default 2048; 2048 to 8192), as `ipfs init -b`.
        #[arg(long, short = 'b')]
        bits: Option<usize>,
    },
    /// Run the node and its RPC.
    Daemon(DaemonArgs),
    /// Stop the running daemon (reports success only once the daemon acknowledged).
    Shutdown,
    /// Show this node's (or another peer's) identity.
    Id {
        /// A peer id (default: this node).
        peer: Option<String>,
    },
    /// Show the daemon's version.
    Version,
    /// Diagnostics.
    #[command(subcommand)]
    Diag(DiagCmd),
    /// Raw blocks.
    #[command(subcommand)]
    Block(BlockCmd),
    /// Connections to peers.
    #[command(subcommand)]
    Swarm(SwarmCmd),
    /// The bootstrap list.
    #[command(subcommand)]
    Bootstrap(BootstrapCmd),
    /// Publish/subscribe.
    #[command(subcommand)]
    Pubsub(PubsubCmd),
    /// The DHT.
    #[command(subcommand)]
    Routing(RoutingCmd),
    /// DHT queries.
    #[command(subcommand)]
    Dht(crate::names::DhtCmd),
    /// Named keys for IPNS.
    #[command(subcommand)]
    Key(crate::names::KeyCmd),
    /// IPNS names: publish and resolve.
    #[command(subcommand)]
    Name(crate::names::NameCmd),
    /// Pins.
    #[command(subcommand)]
    Pin(PinCmd),
    /// The mutable file system (MFS), as `ipfs files`.
    #[command(subcommand)]
    Files(FilesCmd),
    /// The repo.
    #[command(subcommand)]
    Repo(RepoCmd),
    /// Show or change the config: `config show`, `config KEY`, `config KEY VALUE`,
    /// `config profile apply NAME [--dry-run]`. Keys are Kubo's (unknown keys are refused).
    Config {
        /// `show`, `profile`, or a key such as `Addresses.API`.
        key: String,
        /// The value to set (`apply` after `profile`).
        value: Option<String>,
        /// The profile name, after `profile apply`.
        profile: Option<String>,
        /// Parse the value as JSON.
        #[arg(long)]
        json: bool,
        /// Parse the value as a boolean.
        #[arg(long)]
        bool: bool,
        /// With `profile apply`: show the old and new config without changing it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Add files and directories (`-r`) to the node, as `ipfs add` does: prints
    /// `added <cid> <name>` per entry (a progress bar on a terminal).
    Add(AddArgs),
    /// Download a file or directory (a tar stream, unpacked into --output unless --archive).
    Get {
        /// The path (`/ipfs/<cid>/...` or `<cid>/...`).
        path: String,
        /// Where to write (default: the last path segment, in the current directory).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Write the tar archive itself.
        #[arg(long, short)]
        archive: bool,
        /// Compress with gzip.
        #[arg(long = "compress", short = 'C')]
        compress: bool,
        /// The gzip level (1-9).
        #[arg(long = "compression-level", short = 'l')]
        compression_level: Option<u32>,
    },
    /// List a directory's links.
    Ls {
        /// The paths.
        #[arg(required = true)]
        paths: Vec<String>,
        /// Print a header line.
        #[arg(long, short = 'v')]
        headers: bool,
        /// Read each entry's block for its type.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        resolve_type: bool,
        /// Print sizes.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        size: bool,
        /// Print entries as they are read.
        #[arg(long, short)]
        stream: bool,
    },
    /// Resolve a path to the CID it names.
    Resolve {
        /// The path.
        path: String,
    },
    /// Print files' bytes (fetching missing blocks from peers unless --offline).
    Cat {
        /// The CIDs (or /ipfs/<cid> paths).
        #[arg(required = true)]
        cids: Vec<String>,
        /// Skip this many bytes.
        #[arg(long, short, default_value_t = 0)]
        offset: u64,
        /// Print at most this many bytes.
        #[arg(long, short)]
        length: Option<u64>,
    },
    /// List the links of DAGs (the CIDs they reference).
    Refs {
        /// The roots.
        #[arg(required = true)]
        cids: Vec<String>,
        /// Walk the whole DAG, not only the roots' links.
        #[arg(long, short)]
        recursive: bool,
        /// Print each CID once.
        #[arg(long, short)]
        unique: bool,
        /// Print edges as `<src> -> <dst>`.
        #[arg(long, short)]
        edges: bool,
        /// The line format, with <src>, <dst> and <linkname>.
        #[arg(long, default_value = "<dst>")]
        format: String,
        /// How deep to walk (-1: no limit).
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        max_depth: i64,
    },
    /// IPLD DAGs.
    #[command(subcommand)]
    Dag(DagCmd),
    /// The Bitswap exchange.
    #[command(subcommand)]
    Bitswap(BitswapCmd),
    /// Announcing content in the DHT.
    #[command(subcommand)]
    Provide(ProvideCmd),
    /// The daemon's watched import folder (`cairn daemon --watch DIR`, `Cairn.Watch`).
    #[command(subcommand)]
    Watch(WatchCmd),
    /// Ping a peer over libp2p.
    Ping {
        /// The peer id (or a multiaddr ending in /p2p/<id>).
        peer: String,
        /// How many pings.
        #[arg(long, short = 'n', default_value_t = 10)]
        count: u32,
    },
}

/// `cairn daemon` options.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Initialise the repo first if it does not exist.
    #[arg(long)]
    pub init: bool,
    /// Profiles for `--init`, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub init_profile: Vec<String>,
    /// Turn pubsub on regardless of the config (Kubo's flag).
    #[arg(long)]
    pub enable_pubsub_experiment: bool,
    /// Send and follow IPNS records over pubsub too (Kubo's flag; `Ipns.UsePubsub`). Turns
    /// pubsub on.
    #[arg(long)]
    pub enable_namesys_pubsub: bool,
    /// Collect garbage every `Datastore.GCPeriod` while the repo is above
    /// `Datastore.StorageGCWatermark` percent of `Datastore.StorageMax` (Kubo's flag).
    #[arg(long)]
    pub enable_gc: bool,
    /// Import files and folders dropped into DIR once complete, and pin them (the config's
    /// `Cairn.Watch` section holds the other settings; this takes the place of its `Dir`).
    #[arg(long, value_name = "DIR")]
    pub watch: Option<PathBuf>,
}

/// `cairn block ...`
#[derive(Debug, Subcommand)]
pub enum BlockCmd {
    /// Store a block from a file (or stdin) and print its CID.
    Put {
        /// The file (default: stdin).
        file: Option<PathBuf>,
        /// The CID's codec.
        #[arg(long, default_value = "raw")]
        cid_codec: String,
        /// The hash function.
        #[arg(long, default_value = "sha2-256")]
        mhtype: String,
        /// Pin it.
        #[arg(long)]
        pin: bool,
        /// Allow blocks over 1 MiB.
        #[arg(long)]
        allow_big_block: bool,
    },
    /// Write a block's bytes to stdout.
    Get {
        /// The CID.
        cid: String,
    },
    /// Show a block's CID and size.
    Stat {
        /// The CID.
        cid: String,
    },
    /// Remove blocks.
    Rm {
        /// The CIDs.
        #[arg(required = true)]
        cids: Vec<String>,
        /// Ignore blocks that are not there.
        #[arg(long, short)]
        force: bool,
        /// Print nothing on success.
        #[arg(long, short)]
        quiet: bool,
    },
}

/// `cairn swarm ...`
#[derive(Debug, Subcommand)]
pub enum SwarmCmd {
    /// List connected peers.
    Peers,
    /// Connect to peers.
    Connect {
        /// Multiaddrs ending in /p2p/<peer id>.
        #[arg(required = true)]
        addrs: Vec<String>,
    },
    /// Disconnect from peers.
    Disconnect {
        /// Multiaddrs ending in /p2p/<peer id>.
        #[arg(required = true)]
        addrs: Vec<String>,
    },
    /// Show known peer addresses (`addrs local` for this node's).
    Addrs {
        /// `local` or `listen`.
        which: Option<String>,
    },
}

/// `cairn bootstrap ...`
#[derive(Debug, Subcommand)]
pub enum BootstrapCmd {
    /// Show the list.
    List,
    /// Add peers (or Kubo's default list).
    Add {
        /// Multiaddrs ending in /p2p/<peer id>.
        addrs: Vec<String>,
        /// Add Kubo's default list.
        #[arg(long)]
        default: bool,
    },
    /// Remove peers (or all of them).
    Rm {
        /// Multiaddrs ending in /p2p/<peer id>.
        addrs: Vec<String>,
        /// Remove every entry.
        #[arg(long)]
        all: bool,
    },
}

/// `cairn pubsub ...`
#[derive(Debug, Subcommand)]
pub enum PubsubCmd {
    /// Publish one message (the data argument, or stdin).
    Pub {
        /// The topic.
        topic: String,
        /// The data (default: stdin).
        data: Option<String>,
    },
    /// Print messages of a topic until interrupted.
    Sub {
        /// The topic.
        topic: String,
    },
    /// List subscribed topics.
    Ls,
    /// List peers (subscribed to a topic, if given).
    Peers {
        /// The topic.
        topic: Option<String>,
    },
}

/// `cairn routing ...`
#[derive(Debug, Subcommand)]
pub enum RoutingCmd {
    /// Find providers of a CID.
    Findprovs {
        /// The CID.
        cid: String,
        /// How many providers to look for.
        #[arg(long, short = 'n', default_value_t = 20)]
        num_providers: u32,
    },
    /// Announce that this node provides CIDs.
    Provide {
        /// The CIDs.
        #[arg(required = true)]
        cids: Vec<String>,
        /// Announce every block of their DAGs (all must be stored here).
        #[arg(long, short)]
        recursive: bool,
    },
    /// Find a peer's addresses.
    Findpeer {
        /// The peer id.
        peer: String,
    },
    /// Value records: get and put.
    #[command(flatten)]
    Record(crate::names::RecordCmd),
}

/// `cairn files ...` (Kubo's `ipfs files`).
#[derive(Debug, Subcommand)]
pub enum FilesCmd {
    /// Make directories (`-p`: parents, no error if it exists).
    Mkdir {
        /// The directory.
        path: String,
        /// Make parents as needed.
        #[arg(long, short)]
        parents: bool,
        /// CID version of new directories.
        #[arg(long = "cid-version", alias = "cid-ver")]
        cid_version: Option<u8>,
        /// Hash function of new directories.
        #[arg(long)]
        hash: Option<String>,
    },
    /// Write stdin (or a file) to an MFS file.
    Write {
        /// The MFS file.
        path: String,
        /// Read the data from this file instead of stdin.
        data: Option<std::path::PathBuf>,
        /// Byte offset to write at.
        #[arg(long, short)]
        offset: Option<i64>,
        /// Create the file if it does not exist.
        #[arg(long, short = 'e')]
        create: bool,
        /// Make parent directories as needed.
        #[arg(long, short)]
        parents: bool,
        /// Truncate the file to 0 bytes first.
        #[arg(long, short)]
        truncate: bool,
        /// Write at most this many bytes.
        #[arg(long, short = 'n')]
        count: Option<i64>,
        /// Raw blocks for new leaves.
        #[arg(long = "raw-leaves")]
        raw_leaves: Option<bool>,
        /// CID version of a created file.
        #[arg(long = "cid-version", alias = "cid-ver")]
        cid_version: Option<u8>,
        /// Hash function of a created file.
        #[arg(long)]
        hash: Option<String>,
    },
    /// Print a file's bytes.
    Read {
        /// The MFS file.
        path: String,
        /// Byte offset to read from.
        #[arg(long, short)]
        offset: Option<i64>,
        /// Read at most this many bytes.
        #[arg(long, short = 'n')]
        count: Option<i64>,
    },
    /// List a directory.
    Ls {
        /// The directory (default `/`).
        path: Option<String>,
        /// Long listing: name, hash, size.
        #[arg(long, short)]
        long: bool,
        /// Do not sort.
        #[arg(short = 'U')]
        unsorted: bool,
    },
    /// Show a file's or directory's CID and sizes.
    Stat {
        /// The path (MFS, or `/ipfs/...`).
        path: String,
        /// Print only the CID.
        #[arg(long)]
        hash: bool,
        /// Print only the cumulative size.
        #[arg(long)]
        size: bool,
        /// Print with this format (`<hash>`, `<size>`, `<cumulsize>`, `<childs>`, `<type>`).
        #[arg(long)]
        format: Option<String>,
        /// Also count how much of the DAG is stored locally (nothing is fetched).
        #[arg(long)]
        with_local: bool,
    },
    /// Copy a file or directory (an MFS path or `/ipfs/...`) into MFS.
    Cp {
        /// The source.
        source: String,
        /// The destination.
        dest: String,
        /// Make parent directories as needed.
        #[arg(long, short)]
        parents: bool,
    },
    /// Move a file or directory.
    Mv {
        /// The source.
        source: String,
        /// The destination.
        dest: String,
    },
    /// Remove files or directories.
    Rm {
        /// The paths.
        #[arg(required = true)]
        paths: Vec<String>,
        /// Remove directories recursively.
        #[arg(long, short)]
        recursive: bool,
        /// Remove whatever is there; no error if nothing is.
        #[arg(long)]
        force: bool,
    },
    /// Print the CID at a path (every command is already flushed).
    Flush {
        /// The path (default `/`).
        path: Option<String>,
    },
    /// Change a directory's CID version or hash function.
    Chcid {
        /// The directory (default `/`).
        path: Option<String>,
        /// The CID version.
        #[arg(long = "cid-version", alias = "cid-ver")]
        cid_version: Option<u8>,
        /// The hash function.
        #[arg(long)]
        hash: Option<String>,
    },
    /// Set the UnixFS 1.5 POSIX mode of a file or directory (Kubo's `files chmod`).
    Chmod {
        /// The mode in octal (`755`, `0644`); the permission bits `0o777` are kept.
        mode: String,
        /// The file or directory (`/` included).
        path: String,
    },
    /// Set the UnixFS 1.5 modification time of a file or directory (Kubo's `files touch`).
    Touch {
        /// The file or directory (`/` included).
        path: String,
        /// Modification time in seconds since the Unix epoch (may be negative); default (or 0):
        /// now.
        #[arg(long, allow_hyphen_values = true)]
        mtime: Option<i64>,
        /// Nanoseconds of the modification time (ignored without `--mtime`).
        #[arg(long = "mtime-nsecs")]
        mtime_nsecs: Option<u64>,
    },
}

/// `cairn pin ...`
#[derive(Debug, Subcommand)]
pub enum PinCmd {
    /// Pin CIDs (recursively unless --recursive=false).
    Add {
        /// The CIDs.
        #[arg(required = true)]
        cids: Vec<String>,
        /// Pin the whole DAG.
        #[arg(long, short, default_value_t = true, action = clap::ArgAction::Set)]
        recursive: bool,
        /// Show how many blocks have been fetched/processed while pinning.
        #[arg(long)]
        progress: bool,
    },
    /// Remove pins.
    Rm {
        /// The CIDs.
        #[arg(required = true)]
        cids: Vec<String>,
        /// Remove recursive pins.
        #[arg(long, short, default_value_t = true, action = clap::ArgAction::Set)]
        recursive: bool,
    },
    /// Replace a recursive pin: pin the new root, then unpin the old one (unless --unpin=false).
    Update {
        /// The pinned root.
        from: String,
        /// The new root.
        to: String,
        /// Remove the old pin.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        unpin: bool,
    },
    /// List pins.
    Ls {
        /// Only these CIDs.
        cids: Vec<String>,
        /// direct, indirect, recursive or all.
        #[arg(long = "type", short = 't', default_value = "all")]
        kind: String,
    },
}

/// `cairn repo ...`
#[derive(Debug, Subcommand)]
pub enum RepoCmd {
    /// Show the repo's size and object count.
    Stat {
        /// Only the sizes (RepoSize, StorageMax), without counting objects.
        #[arg(long, short = 's')]
        size_only: bool,
        /// Sizes in human units (MB, GB).
        #[arg(long, short = 'H')]
        human: bool,
    },
    /// Remove unpinned blocks.
    Gc {
        /// Print only the removed CIDs.
        #[arg(long, short = 'q')]
        quiet: bool,
        /// Print errors as they happen and go on.
        #[arg(long)]
        stream_errors: bool,
        /// Print nothing.
        #[arg(long)]
        silent: bool,
    },
    /// Check every stored block against its hash; name each damaged one.
    Verify,
}

/// `cairn dag ...`
#[derive(Debug, Subcommand)]
pub enum DagCmd {
    /// Write a DAG as a CARv1 to stdout (`cairn dag export <cid> > file.car`).
    Export {
        /// The root CID.
        cid: String,
    },
    /// Import CAR files (v1 or v2), pinning their roots.
    Import {
        /// The CAR files (stdin when none).
        files: Vec<PathBuf>,
        /// Pin the roots.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        pin_roots: bool,
        /// Print block and byte counts.
        #[arg(long)]
        stats: bool,
    },
    /// Print the IPLD value at a path.
    Get {
        /// The path.
        path: String,
        /// The output codec (dag-json, dag-cbor, raw...).
        #[arg(long, default_value = "dag-json")]
        output_codec: String,
    },
    /// Store IPLD values read from files (stdin when none).
    Put {
        /// The files.
        files: Vec<PathBuf>,
        /// How the input is encoded.
        #[arg(long, default_value = "dag-json")]
        input_codec: String,
        /// How it is stored.
        #[arg(long, default_value = "dag-cbor")]
        store_codec: String,
        /// Pin what is stored.
        #[arg(long)]
        pin: bool,
    },
    /// Count a DAG's blocks and bytes.
    Stat {
        /// The roots.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Resolve a path to a block and the path left inside it.
    Resolve {
        /// The path.
        path: String,
    },
}

/// `cairn add` options: Kubo's names and defaults.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Files or directories (stdin when none).
    pub paths: Vec<PathBuf>,
    /// Add directories recursively.
    #[arg(long, short)]
    pub recursive: bool,
    /// Print only the CIDs.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print only the last CID.
    #[arg(long = "quieter", short = 'Q')]
    pub quieter: bool,
    /// Print nothing.
    #[arg(long)]
    pub silent: bool,
    /// Show a progress bar (default: on a terminal).
    #[arg(long, short, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub progress: Option<bool>,
    /// Pin what is added.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pin: bool,
    /// Compute CIDs without storing.
    #[arg(long = "only-hash", short = 'n')]
    pub only_hash: bool,
    /// Wrap the entries in a directory.
    #[arg(long = "wrap-with-directory", short = 'w')]
    pub wrap: bool,
    /// Include hidden files (names starting with a dot).
    #[arg(long = "hidden", short = 'H')]
    pub hidden: bool,
    /// The chunker (size-N, rabin[-min-avg-max], buzhash).
    #[arg(long, short = 's')]
    pub chunker: Option<String>,
    /// Use the trickle layout.
    #[arg(long, short)]
    pub trickle: bool,
    /// Leaves as raw blocks.
    #[arg(long = "raw-leaves", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub raw_leaves: Option<bool>,
    /// CID version (0 or 1).
    #[arg(long = "cid-version")]
    pub cid_version: Option<u8>,
    /// The hash function.
    #[arg(long)]
    pub hash: Option<String>,
    /// Inline small blocks into identity CIDs.
    #[arg(long)]
    pub inline: bool,
    /// The inline limit in bytes.
    #[arg(long = "inline-limit")]
    pub inline_limit: Option<usize>,
    /// The pin's name.
    #[arg(long = "pin-name")]
    pub pin_name: Option<String>,
    /// The name of stdin's file in the output.
    #[arg(long = "stdin-name")]
    pub stdin_name: Option<String>,
}

/// `cairn bitswap ...`
#[derive(Debug, Subcommand)]
pub enum BitswapCmd {
    /// Show Bitswap's counters, wantlist and partners.
    Stat {
        /// Print sizes in human units.
        #[arg(long)]
        human: bool,
        /// List the partners.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Show the CIDs this node is fetching (or that a peer wants from it).
    Wantlist {
        /// A peer whose wantlist to show.
        #[arg(long, short)]
        peer: Option<String>,
    },
    /// Show what this node exchanged with a peer.
    Ledger {
        /// The peer id.
        peer: String,
    },
    /// Announce everything the providing strategy selects, now.
    Reprovide,
}

/// `cairn provide ...`
#[derive(Debug, Subcommand)]
pub enum ProvideCmd {
    /// Show the provider's counters.
    Stat,
}

/// `cairn diag ...`.
#[derive(Debug, Subcommand)]
pub enum DiagCmd {
    /// Exit 0 if the daemon is serving, non-zero once its shutdown has begun or when it cannot
    /// be reached (Kubo 0.42's `ipfs diag healthy`, for container healthchecks). Asks the
    /// daemon's `GET /health`.
    Healthy,
}

/// `cairn watch ...`
#[derive(Debug, Subcommand)]
pub enum WatchCmd {
    /// List the watched folder's entries: state, CID, size in bytes, name (and why an import
    /// failed).
    Ls,
    /// Rescan the watched folder now (failed entries are retried).
    Refresh,
}
