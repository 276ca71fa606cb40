"""What a name is: people's names and organisations' names, in English and in Chinese.

The predicates here judge one candidate string; ``ingest.byline`` decides which strings of a
title page are candidates. A person's name is 2-4 Han characters that start with a Chinese
surname ("王骞", "欧阳娜娜"), a transliterated name with a middle dot ("阿卜杜勒·沙库尔"), or
2-6 capitalised words with initials and particles ("J. Zico Kolter", "Rob van der Veer",
"Smith, J."). An organisation carries a word that only organisations carry ("University",
"Forum", "Authority", "研究院", "实验室", "委员会").
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "chinese_surname",
    "clean_name",
    "has_leading_mark",
    "is_han_name",
    "is_organisation",
    "is_person_name",
    "is_placeholder_author",
    "is_role",
    "split_authors",
    "strip_degrees",
]

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# The single-character surnames of the 百家姓 in common use today and the compound ones; a
# 2-4 character Han string that starts with none of them is no name ("北京", "综合", "安全").
_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞"
    "左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕"
    "屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧"
    "闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥"
    "南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支"
    "卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿鲜印"
    "逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由"
    "杲旸钮练贲逄刚禄鄂琚帖乜弓傅阎綦訾"
)
_COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 令狐 轩辕 端木 独孤 南宫 "
    "西门 百里 呼延 万俟 澹台 公冶 宗政 濮阳 淳于 单于 太叔 申屠 闻人 赫连 钟离 拓跋 第五".split()
)
_HAN_NAME_RE = re.compile(f"[{_HAN}]{{2,4}}")
_HAN_FOREIGN_RE = re.compile(f"[{_HAN}]{{1,6}}·[{_HAN}]{{1,8}}")
_SURNAME_FIRST_RE = re.compile(r"[^\W\d_][\w'’\-]+,\s*(?:[A-Z]\.\s*-?\s*)+")
_INITIAL_RE = re.compile(r"(?:[A-Z]\.-?)+|[A-Z]")  # "J", "J.", "J.-P.", "G.L." but not "AI"
_PARTICLES = {"van", "von", "der", "den", "de", "del", "della", "di", "da", "dos", "du", "la"}
_PARTICLES |= {"le", "bin", "al", "ter", "ten", "el", "y"}
_PLACEHOLDER_AUTHORS = {
    "admin", "administrator", "anonymous", "author", "owner", "user", "unknown", "windows user",
    "microsoft office user", "微软用户", "作者", "用户", "未知", "cnki",
}  # fmt: skip

# The head word of an organisation's name: it ends the name ("World Economic Forum") or
# leads into what it is of ("Partnership on AI", "Department for Science, ...").
_ORG_HEADS = (
    r"University|Universit[éày]|Institute|Institut|Laboratory|Laboratories|Lab|Labs"
    r"|Inc|Corp|Corporation|Ltd|LLC|GmbH|Company|Commission|Committee|Foundation|Association"
    r"|Alliance|Council|Agency|Ministry|Department|Office|Authority|Forum|Group|Partnership"
    r"|Coalition|Consortium|Society|Centre|Center|School|College|Academy|Bureau|Board"
    r"|Administration|Organi[sz]ation|Federation|Union|Bank|ISAC"
)
_ORG_NAME_RE = re.compile(
    rf"\b(?:{_ORG_HEADS})\.?(?:\s*\([^)]*\))?$|\b(?:{_ORG_HEADS})\s+(?:of|for|on|to)\s+[A-Z]"
    rf"|^(?:University|Universit[éày]|Institute|Department|Ministry|Office) (?:of|for)\b"
)
# Words an organisation's name may carry and a person's never does.
_NOT_PERSON_RE = re.compile(
    rf"\b(?:{_ORG_HEADS}|Univ|Dept|Co|Research|Project|Initiative|Network|Team|Workstream"
    r"|Services|Technologies|Technology|Systems|Intelligence|Security|Google|Microsoft|Meta"
    r"|OpenAI|Anthropic|DeepMind|NVIDIA|IBM|Amazon|Apple|Alibaba|Tencent|Baidu)\b\.?",
    re.IGNORECASE,
)
_SMALL = {"of", "for", "and", "the", "on", "in", "to", "at", "&", "de", "du", "des"}
_HAN_ORG_RE = re.compile(
    r"科技|大学|学院|研究院|研究所|研究中心|实验室|公司|集团|联盟|协会|学会|委员会|办公室|中心|银行"
    r"|工作组|小组|团队|基金会|研究会|智库|[部局厅署院会处社所]$"
)
# Roles, degrees and titles: a part that carries one is no name ("Sr. Director", "教授").
_ROLE_RE = re.compile(
    r"教授|研究员|主任|博士|硕士|院士|工程师|主编|讲师|导师|专家|负责人|架构师|经理|总监"
    r"|\b(?:Director|Professor|Prof|Dr|Chief|Officer|Manager|Member|Chair|Head|Lead|Editor"
    r"|Fellow|Student|Researcher|Engineer|Scientist|President|Founder|CEO|CTO|Supervisor"
    r"|Advisor|Lecturer|Dean|Partner|Associate|Assistant)\b",
    re.IGNORECASE,
)
# Degrees and post-nominals after a name: "Scott A. Emett, PhD", "Marc Eulerich, PhD, CIA".
_DEGREES_RE = re.compile(
    r"(?:,?\s*(?:Ph\.?\s?D\.?|M\.?D\.?|MBA|MSc|BSc|M\.?A\.?|B\.?A\.?|JD|Esq\.?|CPA|CIA|CISA"
    r"|CISSP|CISM|FRS|FREng|OBE|MBE|CBE))+\s*$"
)
# Footnote and affiliation marks: symbols (∗ † ‡ § ¶ ♡ ◦ □ △ ⋄ ✉ ...), digits, "1)" and
# the commas and spaces between them.
_MARK_PUNCT = set("*#^†‡§¶•·,，()（）")


def _is_mark(ch: str) -> bool:
    return ch in _MARK_PUNCT or ch.isdigit() or unicodedata.category(ch) in ("Sm", "So", "Sk")


def strip_degrees(name: str) -> str:
    """``name`` without post-nominal degrees: "Marc Eulerich, PhD, CIA" -> "Marc Eulerich"."""
    return _DEGREES_RE.sub("", name).strip()


def has_leading_mark(part: str) -> bool:
    """Whether a mark is set right before the first word, as affiliations are printed
    ("1Australian National University", "♡Allen Institute for AI", "†Redwood Research").

    A name carries its marks after it ("Zou1", "Seungju Han∗♡"); a year or a number
    followed by a space ("2024 Report") is not a mark.
    """
    part = part.strip()
    i = 0
    while i < len(part) and _is_mark(part[i]) and part[i] not in "()（）,，":
        i += 1
    return 0 < i <= 3 and i < len(part) and part[i].isalpha()


def clean_name(part: str) -> str:
    """A name candidate without marks around it, degrees, handles in brackets or extra spaces.

    "Zou1" -> "Zou", "Fazl Barez◦△" -> "Fazl Barez", "沙泓州1),2),3)" -> "沙泓州",
    "Ads Dawson (GangGreenTemperTatum)" -> "Ads Dawson". A trailing 4-digit number is not
    a mark: "Nov 2025" stays (and is no name, for its digits).
    """
    text = re.sub(r"[(（][^()（）]*[)）]\s*$", "", part.strip())
    end = len(text)
    while end and (_is_mark(text[end - 1]) or text[end - 1].isspace()):
        end -= 1
    if re.search(r"\d{3,}", text[end:]):
        end = len(text)
    start = 0
    while start < end and (_is_mark(text[start]) or text[start].isspace()):
        start += 1
    return strip_degrees(" ".join(text[start:end].split()))


def is_placeholder_author(name: str) -> bool:
    """An Author field that names nobody: empty, "anonymous", "Administrator", "作者"."""
    return not name.strip() or name.strip().casefold() in _PLACEHOLDER_AUTHORS


def is_role(text: str) -> bool:
    """Whether ``text`` names a role, a title or a degree ("Sr. Director", "副教授")."""
    return bool(_ROLE_RE.search(text))


def chinese_surname(name: str) -> str | None:
    """The surname a Chinese name starts with ("欧阳娜娜" -> "欧阳", "王骞" -> "王"), or None."""
    if len(name) >= 3 and name[:2] in _COMPOUND_SURNAMES:
        return name[:2]
    return name[0] if len(name) >= 2 and name[0] in _SURNAMES else None


def is_han_name(name: str) -> bool:
    """2-4 Han characters starting with a Chinese surname, or a name with a middle dot."""
    if _HAN_FOREIGN_RE.fullmatch(name):
        return True
    if not _HAN_NAME_RE.fullmatch(name):
        return False
    return name[0] in _SURNAMES or (len(name) >= 3 and name[:2] in _COMPOUND_SURNAMES)


def is_organisation(text: str) -> bool:
    """Whether ``text`` names an organisation: "World Economic Forum", "复旦大学",
    "High-Level Expert Group on Artificial Intelligence", "同盾科技人工智能研究院".

    A sentence ("。", or more than a dozen words) is not a name.
    """
    text = text.strip(" ,;，；")
    if not text or "。" in text or len(text.split()) > 12 or len(text) > 90:
        return False
    if re.search(f"[{_HAN}]", text):
        return bool(_HAN_ORG_RE.search(re.sub(r"[(（][^)）]*[)）]", "", text)))
    if text.isupper():  # a cover's capitals: "HIGH-LEVEL EXPERT GROUP ON ARTIFICIAL INTELLIGENCE"
        text = " ".join(w if w in _SMALL else w.capitalize() for w in text.lower().split())
    if re.match(r"(?:a|an)\s", text, re.IGNORECASE):
        return False  # "A Report of the Expert Group" is a subtitle
    words = [w for w in re.findall(r"[^\W\d_][\w'’\-]*", text) if w.lower() not in _SMALL]
    title_case = bool(words) and all(w[0].isupper() for w in words)
    return title_case and bool(_ORG_NAME_RE.search(text))


def is_person_name(name: str) -> bool:
    """Whether ``name`` looks like a person's name: "Leon Derczynski", "J. Zico Kolter",
    "Rob van der Veer", "Bo Li", "Smith, J.", or a Chinese name ("王骞", "欧阳娜娜").

    Single words ("LPF", "admin"), organisations ("富数科技", "Google Research"), roles and
    text with digits are not.
    """
    name = name.strip()
    if not name or re.search(r"[\d@/:：]", name) or name.casefold() in _PLACEHOLDER_AUTHORS:
        return False
    if _NOT_PERSON_RE.search(name) or _ROLE_RE.search(name) or _HAN_ORG_RE.search(name):
        return False
    if re.search(f"[{_HAN}]", name):
        return is_han_name(name)
    if _SURNAME_FIRST_RE.fullmatch(name):
        return True
    tokens = name.split()
    if not 2 <= len(tokens) <= 6 or tokens[0] in _PARTICLES or tokens[-1] in _PARTICLES:
        return False
    words = [t for t in tokens if not _INITIAL_RE.fullmatch(t) and t not in _PARTICLES]
    return bool(words) and all(_name_token(t) for t in tokens)


def _name_token(token: str) -> bool:
    if token in _PARTICLES or _INITIAL_RE.fullmatch(token):
        return True
    letters = re.sub(r"[-'’.]", "", token)
    return (
        letters.isalpha()
        and len(letters) <= 20  # "ASurveyofIntelligentMalwareDetectionon" lost its spaces
        and token[0].isupper()
        and any(ch.islower() for ch in token)
        and not token.endswith(".")
    )


_SPLIT_RE = re.compile(r"\s*(?:[,;，；、]|\s(?:and|&)\s)\s*", re.IGNORECASE)
_INITIALS_RE = re.compile(r"^(?:[A-Z]\.?\s*-?\s*){1,3}$")


def split_authors(raw: str) -> list[str]:
    """Split an author string on , ; and & 、 ，; keeps "Smith, J." together; [] if unknown."""
    names: list[str] = []
    for part in _SPLIT_RE.split(raw.strip()):
        part = part.strip()
        if _INITIALS_RE.match(part) and names:
            names[-1] = f"{names[-1]}, {part}"
        elif part:
            names.append(part)
    keep = []
    for name in names:
        plausible = not re.search(r"[\d@/:]", name) and len(name) <= 80
        if plausible and name.casefold() not in _PLACEHOLDER_AUTHORS and name not in keep:
            keep.append(name)
    return keep
