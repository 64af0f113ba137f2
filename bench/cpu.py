"""bench/cpu.py: the CPU seconds every process has used, summed by name.

Imported by bench/pipeline.py; run as a script (bench/enrich.sh) it
prints a line "NAME SECONDS" per name, blanks in names as "_".
"""
import os


def cpu_by_name():
    """User + system CPU seconds of every process, summed by name."""
    hz = os.sysconf("SC_CLK_TCK")
    total = {}
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % pid) as f:
                stat = f.read()
        except (OSError, ValueError):
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        total[name] = total.get(name, 0) + (int(fields[11]) + int(fields[12])) / hz
    return total


if __name__ == "__main__":
    for name, secs in cpu_by_name().items():
        print(name.replace(" ", "_"), secs)
