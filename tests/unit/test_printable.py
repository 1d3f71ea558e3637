from agent.api import printable


def test_controls_and_direction_overrides_are_shown_not_obeyed():
    assert printable("a\x1b[2Jb\x07c\rd\u202ee\x9bf") == "a\\x1b[2Jb\\x07c\\x0dd\\u202ee\\x9bf"


def test_ordinary_text_chinese_and_line_breaks_stay_as_written():
    text = "影像存储盘 will be full — 约 3 天后\n\tnext line ½"
    assert printable(text) == text


def test_a_table_cell_keeps_to_one_line():
    assert printable("a\nb\tc", one_line=True) == "a\\x0ab\\x09c"
