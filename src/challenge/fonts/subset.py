#!/usr/bin/env python3
"""Makes the captcha's font subsets from the Debian font packages.

Usage (from this directory, with fontTools installed, e.g. `pip install fonttools==4.*`):

    apt-get install -y fonts-dejavu-core fonts-liberation2
    python3 subset.py

Keeps printable ASCII (U+0020-U+007E) and U+2013 (en dash), drops hinting and layout tables
(the renderer uses neither), and keeps the copyright, licence and trademark name records.

The DejaVu subsets keep their names: the Bitstream Vera licence asks only that modified
versions not be called "Bitstream" or "Vera". The Liberation subsets are renamed
("Captchaify Sans/Serif/Mono"), because the SIL Open Font License reserves the name
"Liberation" (and Arimo, Tinos, Cousine) for the original versions.
"""
from fontTools import subset
from fontTools.ttLib import TTFont

DEJAVU = "/usr/share/fonts/truetype/dejavu/"
LIBERATION = "/usr/share/fonts/truetype/liberation2/"

# (source file, output file, new family name or None to keep the original names)
FONTS = [
    (DEJAVU + "DejaVuSans-Bold.ttf", "DejaVuSans-Bold.ttf", None),
    (DEJAVU + "DejaVuSansCondensed-Bold.ttf", "DejaVuSansCondensed-Bold.ttf", None),
    (DEJAVU + "DejaVuSerif-Bold.ttf", "DejaVuSerif-Bold.ttf", None),
    (DEJAVU + "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Bold.ttf", None),
    (LIBERATION + "LiberationSans-Bold.ttf", "CaptchaifySans-Bold.ttf", "Captchaify Sans"),
    (LIBERATION + "LiberationSerif-Bold.ttf", "CaptchaifySerif-Bold.ttf", "Captchaify Serif"),
    (LIBERATION + "LiberationMono-Bold.ttf", "CaptchaifyMono-Bold.ttf", "Captchaify Mono"),
]

KEEP_NAMES = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 16, 17}


def main() -> None:
    for src, out, family in FONTS:
        options = subset.Options()
        options.layout_features = []
        options.hinting = False
        options.name_IDs = sorted(KEEP_NAMES)
        options.name_languages = ["*"]
        options.notdef_outline = True
        options.drop_tables += ["FFTM", "GDEF", "GPOS", "GSUB", "kern", "gasp"]
        font = TTFont(src)
        sub = subset.Subsetter(options)
        sub.populate(unicodes=list(range(0x20, 0x7F)) + [0x2013])
        sub.subset(font)
        if family is not None:
            rename(font, family)
        font.save(out)
        print(f"{out}: from {src}")


def rename(font: TTFont, family: str) -> None:
    names = font["name"]
    style = "Bold"
    ps = family.replace(" ", "") + "-" + style
    for rec in list(names.names):
        if rec.nameID in (1, 16):
            names.setName(family, rec.nameID, rec.platformID, rec.platEncID, rec.langID)
        elif rec.nameID == 3:
            names.setName(f"{ps};subset", 3, rec.platformID, rec.platEncID, rec.langID)
        elif rec.nameID == 4:
            names.setName(f"{family} {style}", 4, rec.platformID, rec.platEncID, rec.langID)
        elif rec.nameID == 6:
            names.setName(ps, 6, rec.platformID, rec.platEncID, rec.langID)
    # The name table must not carry the reserved names as a font name any more.
    for rec in names.names:
        if rec.nameID in (1, 3, 4, 6, 16, 17):
            text = rec.toUnicode()
            assert "Liberation" not in text, text
            for reserved in ("Arimo", "Tinos", "Cousine"):
                assert reserved not in text, text


if __name__ == "__main__":
    main()
