"""``cervattn publish FOLDER --repo-id ID``: upload a release folder to the Hugging Face Hub."""

from __future__ import annotations

import argparse
import sys

HELP = "upload a release folder to the Hugging Face Hub (token from HF_TOKEN; --dry-run to list files)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="release folder written by `cervattn export`")
    parser.add_argument("--repo-id", required=True, help="Hub repository, <org>/<arch>.<tag>, e.g. "
                        "cervattn/rcan_densenet121.sipakmed_cells")
    parser.add_argument("--revision", "--branch", dest="revision", help="branch to upload to (created if missing; "
                        "default: main)")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--dry-run", action="store_true", help="list what would be uploaded (sizes, sha256); "
                        "touch no network")
    parser.add_argument("--message", help="commit message")


def run(args: argparse.Namespace) -> int:
    from ..export import publish

    try:
        result = publish(args.folder, args.repo_id, revision=args.revision, private=args.private,
                         dry_run=args.dry_run, commit_message=args.message)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        sys.stderr.write(f"cervattn publish: {e}\n")
        return 1
    out = sys.stdout
    where = f"{result.repo_id}" + (f" (branch {result.revision})" if result.revision else "")
    out.write(("Would upload to " if result.dry_run else "Uploaded to ") + where + ":\n")
    total = 0
    for f in result.files:
        out.write(f"  {f.path:<20} {f.size:>12,} bytes  sha256 {f.sha256}\n")
        total += f.size
    out.write(f"  {len(result.files)} files, {total:,} bytes\n")
    if result.dry_run:
        out.write("Dry run: nothing was uploaded.\n")
    else:
        out.write(f"Commit {result.commit} {result.url or ''}\n")
        out.write(f"Pin it in cervattn/releases.py: revision={result.commit!r}\n")
    return 0
