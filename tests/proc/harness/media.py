"""Test mezzanines made with the ffmpeg CLI (a test helper, not the product path): H.264 video
renditions with a keyframe every segment boundary and B-frames, AAC audio muxed into each, and
the asset.json that describes them (docs/asset-json.md)."""
import json
import os
import subprocess

RUNGS = [("360p", 640, 360, 800000), ("270p", 480, 270, 500000), ("180p", 320, 180, 300000)]


def make_asset(root, asset, seconds=9, fps=24, seg=4, rungs=RUNGS):
    """Writes {root}/{asset}/{rung}.mp4 and asset.json; returns the asset folder."""
    d = os.path.join(root, asset)
    os.makedirs(d, exist_ok=True)
    for rid, w, h, _ in rungs:
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
             "testsrc2=size=%dx%d:rate=%d" % (w, h, fps), "-f", "lavfi", "-i",
             "sine=frequency=440:sample_rate=48000", "-ac", "2", "-t", str(seconds),
             "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-bf", "2",
             "-x264-params", "keyint=%d:min-keyint=%d:scenecut=0" % (2 * fps, 2 * fps),
             "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart",
             os.path.join(d, rid + ".mp4")], check=True)
    renditions = [{"id": rid, "type": "video", "file": rid + ".mp4", "width": w, "height": h,
                   "bitrate": br, "frame_rate": fps} for rid, w, h, br in rungs]
    renditions.append({"id": "audio", "type": "audio", "file": rungs[0][0] + ".mp4",
                       "bitrate": 64000, "sample_rate": 48000, "channels": 2, "language": "en"})
    with open(os.path.join(d, "asset.json"), "w") as f:
        json.dump({"version": 1, "segment_duration": seg, "renditions": renditions}, f)
    return d
