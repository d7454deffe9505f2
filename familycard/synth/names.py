"""Personal names for the synthetic population: pools, patronymics, spelling and typos.

Everything here is synthetic: the pools hold common first names and common surnames (frequent in
Kazakhstan, not real individuals) and the generator combines them at random.

Cultures: ``0`` Kazakh, ``1`` Russian/Slavic (Russian, Ukrainian, Belarusian), ``2`` other groups common
in Kazakhstan (Uzbek, Uyghur, Tatar, Korean, German). Sex: ``1`` male, ``2`` female (as in the IIN).

Pools are in the civil-registry spelling, i.e. Kazakh Cyrillic with its nine extra letters
(ә ғ қ ң ө ұ ү һ і). They are numpy ``object`` arrays so generators pick by integer index:

* ``GIVEN[(culture, sex)]`` - given names, most frequent first;
* ``SURNAME[(culture, sex)]`` - surnames; the male and female arrays of one culture are parallel (same
  index, same family: ``Әбдірахманов``/``Әбдірахманова``, ``Иванов``/``Иванова``, ``Ким``/``Ким``);
* ``given_weights`` / ``surname_weights`` - Zipf-like popularity over the same keys, summing to 1.

Spelling: :func:`kk_to_ru` (Kazakh → Russian Cyrillic as Russian-language agencies write it),
:func:`to_latin` (``kz2021``, ``passport``, ``ru_gost``), :func:`variants` (the spellings a clerk may
produce) and :func:`typo` (one keyboard slip, deterministic in a uniform number). :func:`apply_array`
applies any of them to the masked rows of a column.

The 2021 Kazakh Latin alphabet (government resolution of January 2021) is used as published: ä, ğ, q,
ñ, ö, ū, ü, ş, ç, j for ж, h for х and һ, y for ы, ``I ı`` (dotless) for і and ``İ i`` (dotted) for both
и and й - hence ``Қайрат`` → ``Qairat``, ``Нұрлан`` → ``Nūrlan``, ``Бәйтерек`` → ``Bäiterek``. Letters
outside that alphabet are written with digraphs: ц → ts, щ → şş, ё → io, ю → iu, я → ia, э → e;
ъ and ь are dropped.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "CULTURES",
    "FEMALE",
    "GIVEN",
    "KAZAKH",
    "LATIN_SYSTEMS",
    "MALE",
    "OTHER",
    "RUSSIAN",
    "SURNAME",
    "apply_array",
    "female_surname",
    "given_weights",
    "kk_to_ru",
    "patronymic",
    "pick",
    "surname_weights",
    "to_latin",
    "typo",
    "variants",
]

ObjArray = npt.NDArray[np.object_]
LatinSystem = Literal["kz2021", "passport", "ru_gost"]

KAZAKH, RUSSIAN, OTHER = 0, 1, 2
CULTURES: tuple[int, ...] = (KAZAKH, RUSSIAN, OTHER)
MALE, FEMALE = 1, 2
LATIN_SYSTEMS: tuple[LatinSystem, ...] = ("kz2021", "passport", "ru_gost")

# ---------------------------------------------------------------------------------------------------
# Pools (whitespace-separated, roughly most frequent first; order drives the Zipf weights)
# ---------------------------------------------------------------------------------------------------

_KK_MALE = """
Нұрлан Ерлан Қайрат Серік Асқар Бақыт Марат Мұрат Берік Ержан Бауыржан Дәурен Арман Азамат Айдос
Нұржан Ерболат Талғат Қанат Ғалым Ерғали Өмірзақ Дархан Дамир Данияр Алмас Әділ Әлихан Айбек Ақжол
Асылбек Бекзат Бейбіт Болат Ербол Ердос Еркін Ермек Ерназар Жандос Жанболат Жасұлан Жеңіс Жұмабек
Ильяс Қуаныш Қасым Құрманғазы Мағжан Мақсат Мейрам Мирас Мұхтар Мұхамед Нұрбол Нұрсұлтан Олжас Өтеген
Рахат Руслан Рүстем Сабыр Саят Сағат Сәкен Самат Санжар Сұлтан Тимур Төлеген Ұлан Ұлықбек Әсет Шыңғыс
Ыбырай Айдар Ақан Ақылбек Алпамыс Амандық Амангелді Арнұр Арыстан Асан Ахмет Әбілқайыр Әбдірахман
Әнуар Бағдат Бағлан Байжан Бақытжан Батыр Бекболат Бекнұр Бексұлтан Ғабит Ғани Ғазиз Дәулет Дінмұхамед
Досжан Досым Едіге Елдос Елжан Ержігіт Еркебұлан Ертай Есен Есенғали Жақсылық Жандар Жарас Жомарт
Жүсіп Зейнолла Иса Ислам Кемел Кенжебек Кенесары Қажымұқан Қайсар Қамбар Қасымжан Қуат Құдайберген
Қыдыр Медеу Мейірбек Мұқағали Мұса Мұстафа Мырзабек Нариман Нұрбек Нұрдәулет Нұрлыбек Нұртас Оспан
Өмір Өркен Рамазан Рауан Сабит Сағындық Сайлау Серікбол Сейіт Сейітқали Сырым Темірлан Тілек Тоқтар
Төреғали Тұрар Тұрсын Ұзақ Үсен Хамит Шерхан Ыдырыс Әлішер Ғалымжан Абай Абылай Айбар Алдияр Алтынбек
Ансар Бақберген Даниял Ерұлан Есбол Жәнібек Жақып Жалғас Мадияр Мансұр Мұхит Нұрасыл Нұрислам Райымбек
Сұңқар Тамерлан Ермұрат Бекжан Асылжан Шаһмардан Жаһангер Ибраһим Ерсайын Жанайдар Қалжан Мұратбек
Нұрғиса Оралхан Талап Тұрсынбек Шәкәрім Ерсұлтан Бекарыс Әмірхан Ақберген Мейіржан Серғазы Әбдіғали
Кәрім Қалибек Ырысбек Хасен Дүйсен Дүйсенбек Тоқтасын Жұмағали Сәрсен Бекмұрат Әлібек
"""

_KK_FEMALE = """
Әлия Айгүл Гүлнұр Айгерім Ақмарал Айжан Айнұр Ақбота Ақерке Алма Алтынай Аружан Әсел Әсем Балжан
Бақытгүл Ботагөз Гаухар Гүлмира Гүлжан Гүлнар Гүлзира Гүлшат Гүлсім Гүлназ Гүлбану Дана Дариға Данагүл
Динара Жадыра Жанар Жансая Жанат Жазира Жібек Зарина Зәуре Зейнеп Зере Зұлфия Зуһра Индира Іңкәр
Камила Қарлығаш Қуралай Күләш Ләззат Ләйлә Мадина Мақпал Майра Меруерт Мөлдір Нұргүл Назгүл Назерке
Нәзира Наргиз Нұрсұлу Перизат Роза Райхан Сабина Сая Сәуле Салтанат Сымбат Сандуғаш Талшын Толқын
Томирис Тоғжан Ұлжан Ұлдана Ұлпан Үміт Фариза Шолпан Шынар Еңлік Әмина Айдана Айым Айсұлу Айман Айбике
Айша Айзере Ақнұр Алуа Аяжан Аяулым Балнұр Бибігүл Бота Гүлдана Дильназ Әдемі Еркежан Жұлдыз Жанерке
Жәмила Зайра Зарема Ырысты Кәмшат Кәусар Көркем Күнсұлу Қымбат Қаншайым Қарагөз Малика Маржан Мира
Нағима Нұрия Нұржамал Нұрай Сәния Сара Сезім Сұлушаш Торғын Тұмар Ұлбосын Фатима Хадиша Шырын Ақсұлу
Ақниет Әлима Анар Анель Айсәуле Гүлшара Дилара Кенжегүл Ақтолқын Раушан Мәншүк Нұрбике Назым Ажар
Әлфия Гүлбаршын Ақтоты Баян Гүлсара Жансұлу Мейрамгүл Ләтипа Күміс Сәбира Ақжібек Бағила Гүлнәзира
Дәмеш Жаңыл Жәния Зылиха Қалима Қамқа Нұрсәуле Орынкүл Рабиға Сағыныш Сақыпжамал
Тұрсынай Ұлмекен Үкі Шәрбану
"""

_RU_MALE = """
Александр Сергей Андрей Алексей Дмитрий Владимир Евгений Игорь Виктор Николай Максим Михаил Иван Юрий
Олег Денис Павел Артём Роман Вадим Антон Константин Виталий Анатолий Валерий Геннадий Василий Кирилл
Илья Никита Григорий Станислав Владислав Вячеслав Леонид Борис Пётр Фёдор Егор Тимофей Матвей Даниил
Степан Ярослав Глеб Лев Марк Арсений Георгий Семён Эдуард Аркадий Валентин Герман Захар Филипп Богдан
Ростислав Яков Всеволод Вениамин Гавриил Давид Демид Елисей Ефим Иннокентий Кузьма Лука Мирон Назар
Платон Прохор Савелий Святослав Тарас Трофим Эрик Альберт Афанасий Герасим Гордей Емельян Зиновий
Игнат Иосиф Лаврентий Леон Макар Мартин Мстислав Никифор Нестор Остап Родион Савва Тихон Устин Фома
Харитон Юлиан Ян Артемий Данила Клим Кондратий Леонтий Лукьян Мирослав Моисей Потап Серафим Спартак
Феликс Юлий Ефрем Илларион Климент Руслан Владлен Тимур
"""

_RU_FEMALE = """
Елена Наталья Ольга Татьяна Ирина Светлана Анна Екатерина Мария Юлия Людмила Галина Марина Анастасия
Оксана Надежда Валентина Любовь Виктория Лариса Алёна Ксения Дарья Вера Александра Евгения Кристина
Полина Нина Тамара Елизавета Алина Валерия Зинаида Раиса Лидия Маргарита Софья Вероника Диана Карина
Жанна Инна Алла Яна Антонина Варвара Арина Ангелина Алиса Ульяна Милана Кира Таисия Ева Лилия Эвелина
Элина Эльвира Ярослава Агата Аделина Алевтина Анжела Анжелика Белла Василиса Виолетта Влада Дина
Доминика Злата Изабелла Инга Инесса Капитолина Клавдия Лада Лана Лиана Майя Мирослава Нелли Ника
Нонна Олеся Пелагея Прасковья Регина Римма Руслана Серафима Снежана Стефания Фаина Эльза Эмилия
Юлиана Евдокия Ефросинья Марфа Нинель Эмма Элеонора Анфиса Василина Есения Алеся Дарина Вита Лилиана
Милена Рената Розалия Тереза Устинья Стелла
"""

_OT_MALE = """
Рустам Бахтиёр Шерзод Улугбек Фарход Жасур Дилшод Равшан Абдулла Отабек Хуршид Дильмурат Ильхам
Алимжан Шухрат Ринат Рамиль Ильдар Айрат Радик Марсель Ильнур Рафаэль Фарид Андреас Вольдемар Генрих
Фридрих Иоганн Роберт Эдгар Равиль Азат Шамиль Бахром Анвар Тахир
"""

_OT_FEMALE = """
Дилноза Гульнара Нодира Шахноза Мафтуна Феруза Зухра Мунира Севара Умида Гульчехра Дильбар Гульшат
Альфия Гузель Резеда Лейсан Эльмира Ильмира Алсу Венера Диляра Эльза Ирма Гертруда Фрида Эмма Хильда
Мухаббат Камола Мохира Нигора Гульбахор Рейхан
"""

_KK_SURNAME_MALE = """
Ахметов Омаров Сүлейменов Әбдірахманов Жұмабаев Серікбаев Нұрланов Қасымов Оспанов Тұрсынов Байжанов
Әбенов Сәтбаев Сейітжанов Кенжебаев Мұхамеджанов Төлеубаев Ермеков Ибраев Смағұлов Садықов Бекетов
Құлмағамбетов Әбішев Ысқақов Жақсыбеков Мамыров Қалиев Есімов Шәріпов Әлімжанов Тасмағамбетов
Дәулетов Бисенов Бейсенов Мұқанов Жәнібеков Әуезов Нұрпейісов Сейітқалиев Ерғалиев Қайратов Бақытов
Серіков Беріков Мұратов Асқаров Тоқаев Назарбаев Құрманов Сәрсенбаев Есенов Бекмұхамедов Жақсылықов
Әлиев Исаев Мұсаев Сұлтанов Досмұхамедов Жанұзақов Кәрімов Қожахметов Иманбаев Тәжібаев Бөкейханов
Жұмағұлов Дүйсенов Дүйсенбаев Абдуллаев Әбілов Айтбаев Айтжанов Ақымбеков Алдабергенов Алпысбаев
Аманжолов Ахмедиев Байбатыров Байтұрсынов Бақыров Бердібеков Бекқожин Боранбаев Бұқарбаев Ғабдуллин
Ғалиев Дауылбаев Дәуренов Елеусізов Ержанов Ерланов Есқалиев Жақыпов Жаманқұлов Жандосов Жаңабаев
Жексенбаев Жолдасбеков Жұмабеков Жүсіпов Зейнуллин Ибраһимов Исмаилов Қабдолов Қадыров Қазыбеков
Қалмұқанов Қанапиянов Қараев Қасенов Қожабеков Құдайбергенов Қуанышев Қылышбаев Мақсұтов Мамбетов
Медеуов Мұқашев Мұстафин Мырзахметов Нұрғалиев Нұрмағамбетов Нысанбаев Оразбаев Орынбасаров
Өмірбеков Өтегенов Рахимжанов Рысқұлов Сағындықов Сапаров Сарыбаев Сейдахметов Сейфуллин Сманов
Сұлтанбеков Сыздықов Тайманов Тілеубаев Тоқтаров Төлегенов Тұрғанбаев Тұяқбаев Ұлықбеков Үсенов
Хасенов Шайхин Шалабаев Шәкенов Ыбыраев Ысмағұлов Әбдіғалиев Әділов Әмірханов Әнуаров Ғазизов
Ғаббасов Ертаев Есболов Жанғожин Жексенов Жолдыбаев Жұмаділов Қонаев Құнанбаев Мәметов Мырзалиев
Нұржанов Нұрсейітов Оспанбеков Рахметов Сәкенов Сейсенбаев Тәшенов Төлеуов Уәлиханов Шоқаев Байзақов
Балғабаев Бекмағамбетов Дабылов Дөненбаев Елубаев Есенжолов Жармұхамедов Жұбанов Ізбасаров
Кемелов Кенесов Қапаров Қожанов Құлжанов Құсайынов Мақашев Манапов Мейірманов Молдабеков Мұхтаров
Нұрахметов Ойшыбаев Оңғарбаев Оразов Өмірзақов Рамазанов Сабыров Сағатов Сайлауов Сәдуақасов Сейітов
Серғазиев Сұлтанғазин Тәңірбергенов Тоқтамысов Төребеков Тұрлыбеков Ұзақов Үмбетов Шәймерденов
Шаханов Шыңғысов Ыдырысов Ілиясов Мұсин Исин Әбдікәрімов Жаһанов
"""

_RU_SURNAME_MALE = """
Иванов Смирнов Кузнецов Попов Васильев Петров Соколов Михайлов Новиков Фёдоров Морозов Волков Алексеев
Лебедев Семёнов Егоров Павлов Козлов Степанов Николаев Орлов Андреев Макаров Никитин Захаров Зайцев
Соловьёв Борисов Яковлев Григорьев Романов Воробьёв Сергеев Кузьмин Фролов Александров Дмитриев
Королёв Гусев Киселёв Ильин Максимов Поляков Сорокин Виноградов Ковалёв Белов Медведев Антонов Тарасов
Жуков Баранов Филиппов Комаров Давыдов Беляев Герасимов Богданов Осипов Сидоров Матвеев Титов Марков
Миронов Крылов Куликов Карпов Власов Мельников Денисов Гаврилов Тихонов Казаков Афанасьев Данилов
Савельев Тимофеев Фомин Чернов Абрамов Мартынов Ефимов Федотов Щербаков Назаров Калинин Исаев
Чернышёв Быков Маслов Родионов Коновалов Лазарев Воронин Климов Филатов Пономарёв Голубев Кудрявцев
Прохоров Наумов Потапов Журавлёв Овчинников Трофимов Леонов Соболев Ермаков Колесников Гончаров
Емельянов Никифоров Грачёв Котов Гришин Ефремов Архипов Громов Кириллов Малышев Панов Моисеев
Румянцев Акимов Кондратьев Бирюков Горбунов Анисимов Ерёмин Тихомиров Галкин Лукьянов Михеев Скворцов
Юдин Белоусов Нестеров Симонов Прокофьев Харитонов Князев Цветков Левин Митрофанов Воронцов Рябов
Шевченко Коваленко Бондаренко Ткаченко Кравченко Бойко Мельник Савченко Руденко Черных Седых Белых
Толстой Полевой Малиновский Ковальский Каменский Вишневский Покровский Жуковский Островский Успенский
Соколовский Высоцкий Троицкий Городецкий Белый Гладкий Литвиненко Гончаренко Шевчук Ковальчук
"""

_OT_SURNAME_MALE = """
Ким Пак Ли Цой Тен Хан Шин Нам Хегай Тян Югай Когай Шмидт Миллер Вагнер Шнайдер Вебер Фишер Беккер
Шульц Кох Гербер Рейнгардт Юсупов Каримов Рахимов Усманов Турсунов Мирзаев Хасанов Масимов Хайруллин
Сафин Галиев Валиев Шарипов Гарипов Ахметшин Зарипов Нуриев Мухаметзянов Абдуллин Юлдашев Эргашев
Нигматуллин Розыбакиев Ашуров
"""

_SOFT_FEMALE_ENDINGS: tuple[tuple[str, str], ...] = (
    ("ский", "ская"),
    ("цкий", "цкая"),
    ("ой", "ая"),
    ("ый", "ая"),
    ("ий", "ая"),
)


def female_surname(male: str) -> str:
    """The female form of a male surname (Slavic and Turkic rules; anything else is invariable).

    ``-ов/-ев/-ёв/-ин/-ын`` add ``-а`` (``Ахметов`` → ``Ахметова``, ``Ильин`` → ``Ильина``); adjectival
    ``-ский/-цкий/-ой/-ый/-ий`` become ``-ская/-цкая/-ая``; Ukrainian ``-ко``, ``-ук``, Siberian
    ``-их/-ых``, Korean and German surnames do not change.
    """
    low = male.lower()
    for end, fem in _SOFT_FEMALE_ENDINGS:
        if low.endswith(end) and len(low) > len(end) + 1:
            return male[: -len(end)] + fem
    if low.endswith(("ов", "ев", "ёв", "ин", "ын")) and len(low) > 3:
        return male + "а"
    return male


def _zipf(n: int, s: float = 1.0, q: float = 1.0) -> npt.NDArray[np.float64]:
    """Zipf–Mandelbrot weights ``1 / (rank + q) ** s`` for ranks 1..n, normalised to sum 1."""
    w = 1.0 / (np.arange(1, n + 1, dtype=np.float64) + q) ** s
    return w / w.sum()


def _frozen(values: list[str]) -> ObjArray:
    """A read-only object array (pools are shared module state)."""
    arr = np.array(values, dtype=object)
    arr.flags.writeable = False
    return arr


def _frozen_f(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    values.flags.writeable = False
    return values


_GIVEN_TEXT: dict[tuple[int, int], str] = {
    (KAZAKH, MALE): _KK_MALE,
    (KAZAKH, FEMALE): _KK_FEMALE,
    (RUSSIAN, MALE): _RU_MALE,
    (RUSSIAN, FEMALE): _RU_FEMALE,
    (OTHER, MALE): _OT_MALE,
    (OTHER, FEMALE): _OT_FEMALE,
}
_SURNAME_TEXT: dict[int, str] = {KAZAKH: _KK_SURNAME_MALE, RUSSIAN: _RU_SURNAME_MALE, OTHER: _OT_SURNAME_MALE}

GIVEN: dict[tuple[int, int], ObjArray] = {k: _frozen(v.split()) for k, v in _GIVEN_TEXT.items()}
"""Given names by ``(culture, sex)``, most frequent first."""

SURNAME: dict[tuple[int, int], ObjArray] = {}
"""Surnames by ``(culture, sex)``; ``SURNAME[(c, 1)][i]`` and ``SURNAME[(c, 2)][i]`` are one family."""
for _c, _text in _SURNAME_TEXT.items():
    _male = _text.split()
    SURNAME[(_c, MALE)] = _frozen(_male)
    SURNAME[(_c, FEMALE)] = _frozen([female_surname(m) for m in _male])

given_weights: dict[tuple[int, int], npt.NDArray[np.float64]] = {
    k: _frozen_f(_zipf(len(v))) for k, v in GIVEN.items()
}
"""Zipf-like probabilities parallel to ``GIVEN`` (each sums to 1)."""

surname_weights: dict[tuple[int, int], npt.NDArray[np.float64]] = {
    k: _frozen_f(_zipf(len(v), s=0.9, q=2.0)) for k, v in SURNAME.items()
}
"""Zipf-like probabilities parallel to ``SURNAME`` (same for both sexes of a culture; each sums to 1)."""

# ---------------------------------------------------------------------------------------------------
# Patronymics
# ---------------------------------------------------------------------------------------------------

_VOWELS = set("аәеёиіоөуұүыэюяАӘЕЁИІОӨУҰҮЫЭЮЯ")
_HUSHING = set("жшчщц")
# Russian names whose patronymic stem is irregular: name -> (male, female)
_RU_PATRONYMIC_EXCEPTIONS: dict[str, tuple[str, str]] = {
    "Лев": ("Львович", "Львовна"),
    "Павел": ("Павлович", "Павловна"),
    "Пётр": ("Петрович", "Петровна"),
    "Петр": ("Петрович", "Петровна"),
    "Яков": ("Яковлевич", "Яковлевна"),
    "Михаил": ("Михайлович", "Михайловна"),
    "Гавриил": ("Гаврилович", "Гавриловна"),
    "Данила": ("Данилович", "Даниловна"),
    "Илья": ("Ильич", "Ильинична"),
}


@functools.lru_cache(maxsize=4096)
def patronymic(father_given: str, culture: int, sex: int, style: Literal["kk", "ru"] | None = None) -> str:
    """The patronymic of a child of ``father_given``.

    ``style="kk"`` is the modern Kazakh form, one word: ``Нұрлан`` → ``Нұрланұлы`` (son) /
    ``Нұрланқызы`` (daughter). ``style="ru"`` is the Russian form, also found on older Kazakh records:
    ``Иван`` → ``Иванович``/``Ивановна``, ``Сергей`` → ``Сергеевич``/``Сергеевна``, ``Юрий`` →
    ``Юрьевич``, ``Дмитрий`` → ``Дмитриевич``, ``Игорь`` → ``Игоревич``, ``Никита`` → ``Никитич``/
    ``Никитична``, ``Илья`` → ``Ильич``/``Ильинична``, ``Ерғали`` → ``Ерғалиевич``, ``Мұса`` →
    ``Мұсаевич`` (non-Russian names ending in a vowel add ``-евич``). The default style is ``"kk"`` for
    culture 0 and ``"ru"`` otherwise. An empty father's name gives ``""``.
    """
    if sex not in (MALE, FEMALE):
        raise ValueError(f"sex must be 1 (male) or 2 (female), not {sex!r}")
    name = father_given.strip()
    if not name:
        return ""
    if style is None:
        style = "kk" if culture == KAZAKH else "ru"
    male = sex == MALE
    if style == "kk":
        return name + ("ұлы" if male else "қызы")
    if style != "ru":
        raise ValueError(f"style must be 'kk' or 'ru', not {style!r}")
    if name in _RU_PATRONYMIC_EXCEPTIONS:
        return _RU_PATRONYMIC_EXCEPTIONS[name][0 if male else 1]
    low = name.lower()
    ev, ov = ("евич", "ович") if male else ("евна", "овна")
    if low.endswith("ий") and len(low) > 3:
        stem = name[:-2]
        cluster_r = low[-3] == "р" and low[-4] not in _VOWELS
        return stem + ("и" if cluster_r else "ь") + ev
    if low.endswith("й"):
        return name[:-1] + ev
    if low.endswith("ь"):
        return name[:-1] + ev
    if low[-1] in "ая" and culture == RUSSIAN and len(low) > 2:
        stem = name[:-1]
        if male:
            return stem + "ич"
        return stem + ("ична" if stem[-1].lower() in "тв" else "инична")
    if low[-1] in _VOWELS:
        return name + ev
    if low[-1] in _HUSHING:
        return name + ev
    return name + ov


# ---------------------------------------------------------------------------------------------------
# Transliteration
# ---------------------------------------------------------------------------------------------------

_KK_TO_RU = str.maketrans(
    {
        "ә": "а",
        "ғ": "г",
        "қ": "к",
        "ң": "н",
        "ө": "о",
        "ұ": "у",
        "ү": "у",
        "һ": "х",
        "і": "и",
        "Ә": "А",
        "Ғ": "Г",
        "Қ": "К",
        "Ң": "Н",
        "Ө": "О",
        "Ұ": "У",
        "Ү": "У",
        "Һ": "Х",
        "І": "И",
    }
)


@functools.lru_cache(maxsize=65_536)
def kk_to_ru(s: str) -> str:
    """Kazakh Cyrillic → Russian Cyrillic, letter by letter, case kept.

    ә→а, ғ→г, қ→к, ң→н, ө→о, ұ→у, ү→у, һ→х, і→и: ``Нұрлан`` → ``Нурлан``, ``Қайрат`` → ``Кайрат``.
    """
    return s.translate(_KK_TO_RU)


def _table(pairs: str) -> dict[str, tuple[str, str]]:
    """Parse ``"а:a ә:ä ..."`` (``-`` = nothing) into ``{cyr: (lower, Capitalised)}``."""
    out: dict[str, tuple[str, str]] = {}
    for item in pairs.split():
        cyr, lat = item.split(":")
        lat = "" if lat == "-" else lat
        out[cyr] = (lat, lat[:1].upper() + lat[1:])
    return out


_KZ2021 = _table(
    "а:a ә:ä б:b в:v г:g ғ:ğ д:d е:e ё:io ж:j з:z и:i й:i к:k қ:q л:l м:m н:n ң:ñ о:o ө:ö п:p р:r "
    "с:s т:t у:u ұ:ū ү:ü ф:f х:h һ:h ц:ts ч:ç ш:ş щ:şş ъ:- ы:y і:ı ь:- э:e ю:iu я:ia"
)
# Dotted/dotless i: lower-case и/й are "i" whose capital is "İ"; lower-case і is "ı" whose capital is "I".
for _k in "ийёюя":
    _lo = _KZ2021[_k][0]
    _KZ2021[_k] = (_lo, "İ" + _lo[1:])
_KZ2021["і"] = ("ı", "I")

_PASSPORT = _table(
    "а:a ә:a б:b в:v г:g ғ:g д:d е:e ё:e ж:zh з:z и:i й:i к:k қ:k л:l м:m н:n ң:n о:o ө:o п:p р:r "
    "с:s т:t у:u ұ:u ү:u ф:f х:kh һ:h ц:ts ч:ch ш:sh щ:shch ъ:ie ы:y і:i ь:- э:e ю:iu я:ia"
)

_RU_GOST = _table(
    "а:a б:b в:v г:g д:d е:e ё:e ж:zh з:z и:i й:y к:k л:l м:m н:n о:o п:p р:r с:s т:t у:u ф:f "
    "х:kh ц:ts ч:ch ш:sh щ:shch ъ:- ы:y ь:- э:e ю:yu я:ya"
)

_WORD = re.compile(r"[^\W\d_]+")


def _romanise(s: str, table: dict[str, tuple[str, str]]) -> str:
    """Letter by letter; a capital's digraph is ``Zh`` in a word and ``ZH`` in an all-caps word."""
    caps = [False] * len(s)
    for m in _WORD.finditer(s):
        word = m.group()
        if len(word) > 1 and word.isupper():
            caps[m.start() : m.end()] = [True] * len(word)
    out: list[str] = []
    for i, ch in enumerate(s):
        low = ch.lower()
        entry = table.get(low)
        if entry is None:
            out.append(ch)
        elif ch == low:
            out.append(entry[0])
        else:
            cap = entry[1]
            out.append(cap[:1] + cap[1:].upper() if caps[i] else cap)
    return "".join(out)


@functools.lru_cache(maxsize=65_536)
def to_latin(s: str, system: LatinSystem = "kz2021") -> str:
    """Romanise a Kazakh (or Russian) Cyrillic name; characters that are not Cyrillic are kept.

    * ``"kz2021"`` - the 2021 Kazakh Latin alphabet (see the module docstring): ``Қайрат`` → ``Qairat``,
      ``Нұрлан`` → ``Nūrlan``, ``Әлия`` → ``Älia``, ``Шыңғыс`` → ``Şyñğys``, ``Іңкәр`` → ``Iñkär``.
    * ``"passport"`` - ICAO 9303 transliteration with the Kazakh letters reduced to their base letter,
      upper case: ж ZH, х KH, ц TS, ч CH, ш SH, щ SHCH, ы Y, й I, ъ IE, ь dropped, ю IU, я IA, ә A, ғ G,
      қ K, ң N, ө O, ұ U, ү U, һ H, і I: ``Қайрат`` → ``KAIRAT``, ``Әлия`` → ``ALIIA``.
    * ``"ru_gost"`` - BGN/PCGN-like romanisation of the Russian spelling (:func:`kk_to_ru` first):
      ж zh, х kh, ц ts, ч ch, ш sh, щ shch, й y, ы y, ю yu, я ya, е/ё e, ъ/ь dropped:
      ``Әлия`` → ``Aliya``, ``Юрий`` → ``Yuriy``.
    """
    if system == "passport":
        return _romanise(s, _PASSPORT).upper()
    if system == "kz2021":
        return _romanise(s, _KZ2021)
    if system == "ru_gost":
        return _romanise(kk_to_ru(s), _RU_GOST)
    raise ValueError(f"unknown romanisation system {system!r}; expected one of {LATIN_SYSTEMS}")


_KK_FRONT = set("әөүіеи")
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
# Common clerks' alternatives that no letter rule produces (all normalise to the same key as the name).
_ALTERNATES: dict[str, tuple[str, ...]] = {
    "Мұхамед": ("Мухаммед",),
    "Дінмұхамед": ("Динмухаммед",),
    "Бекмұхамедов": ("Бекмухаммедов",),
    "Әлия": ("Алья",),
    "Әсел": ("Асэль",),
    "Наталья": ("Наталия",),
    "Софья": ("София",),
    "Дарья": ("Дария",),
}


def _soft_l(kk: str, ru: str) -> str | None:
    """Russian-style soft sign after a final ``л`` of a front-vowel Kazakh name (Айгүл → Айгуль)."""
    if ru.endswith("л") and any(c in _KK_FRONT for c in kk.lower()):
        return ru + "ь"
    return None


@functools.lru_cache(maxsize=16_384)
def _variants(name: str) -> tuple[str, ...]:
    out: list[str] = []
    if _CYRILLIC.search(name):
        ru = kk_to_ru(name)
        out.append(ru)
        soft = _soft_l(name, ru)
        if soft:
            out.append(soft)
        out.extend(_ALTERNATES.get(name, ()))
        if "ё" in ru or "Ё" in ru:
            out.append(ru.replace("ё", "е").replace("Ё", "Е"))
        passport = to_latin(name, "passport")
        gost = to_latin(name, "ru_gost")
        out.append(passport)
        out.append(passport.title())
        out.append(to_latin(name, "kz2021"))
        out.append(gost)
        if gost[:1] == "E":
            out.append("Ye" + gost[1:])
    else:
        out.extend((name.upper(), name.title()))
    seen: set[str] = {name}
    uniq: list[str] = []
    for v in out:
        if v not in seen:
            seen.add(v)
            uniq.append(v)
    return tuple(uniq)


def variants(name: str) -> list[str]:
    """Alternative spellings of one name a clerk may produce, deterministic order, without ``name``.

    Russian Cyrillic form (and its soft-sign form: ``Айгүл`` → ``Айгуль``), known alternates
    (``Мұхамед`` → ``Мухаммед``), ``ё`` → ``е``, then the Latin forms: passport (upper case and title case),
    Kazakh Latin 2021 and BGN-like (plus ``Ye-`` for an initial ``Е``: ``Yerlan``). Surname endings
    ``-ов/-ев`` are kept as they are. Every variant of a pool name has the same
    :func:`familycard.identity.normalize.normalize_name` key as the name.
    """
    return list(_variants(name))


# ---------------------------------------------------------------------------------------------------
# Typos
# ---------------------------------------------------------------------------------------------------


def _neighbours(rows: tuple[str, ...]) -> dict[str, str]:
    """Adjacent keys on a staggered keyboard: same row ±1, row above (c, c+1), row below (c-1, c)."""
    out: dict[str, str] = {}
    for r, row in enumerate(rows):
        for c, key in enumerate(row):
            near: list[str] = []
            for rr, cols in ((r, (c - 1, c + 1)), (r - 1, (c, c + 1)), (r + 1, (c - 1, c))):
                if 0 <= rr < len(rows):
                    near.extend(rows[rr][cc] for cc in cols if 0 <= cc < len(rows[rr]))
            out[key] = "".join(near)
    return out


_NEIGHBOURS: dict[str, str] = {
    **_neighbours(("qwertyuiop", "asdfghjkl", "zxcvbnm")),
    **_neighbours(("йцукенгшщзхъ", "фывапролджэ", "ячсмитьбю")),
    "ё": "е",
    # Kazakh letters: the usual slip is the Russian base letter (no Kazakh layout active).
    "ә": "а",
    "ғ": "г",
    "қ": "к",
    "ң": "н",
    "ө": "о",
    "ұ": "у",
    "ү": "у",
    "һ": "х",
    "і": "и",
}
_TYPO_KINDS = ("delete", "duplicate", "transpose", "substitute")


def _split(f: float, n: int) -> tuple[int, float]:
    """Index in ``range(n)`` from a uniform ``f`` and the remaining uniform fraction."""
    x = f * n
    i = min(int(x), n - 1)
    return i, min(max(x - i, 0.0), 1.0)


@functools.lru_cache(maxsize=65_536)
def _typo_spots(s: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Where ``s`` can take a transposition (two different neighbours) and a neighbouring-key slip."""
    n = len(s)
    return (
        tuple(i for i in range(n - 1) if s[i] != s[i + 1]),
        tuple(i for i in range(n) if s[i].lower() in _NEIGHBOURS),
    )


def typo(s: str, u: float) -> str:
    """One keyboard slip in ``s``, fully determined by the uniform number ``u`` in [0, 1).

    ``int(u * 4)`` picks the kind - deletion, duplication, adjacent transposition, substitution by a
    neighbouring key (Russian ЙЦУКЕН for Cyrillic, QWERTY for Latin; a Kazakh letter slips to its Russian
    base letter) - and the fractional parts pick the position and the replacement. A transposition of two
    equal characters, or a substitution where no character has a keyboard neighbour, falls back to a
    deletion, so the result always differs from any non-empty ``s``; ``""`` is returned unchanged.
    """
    n = len(s)
    if n == 0:
        return s
    kind, f = _split(min(max(float(u), 0.0), 1.0), 4)
    result = s
    if _TYPO_KINDS[kind] == "transpose":
        spots = _typo_spots(s)[0]
        if spots:
            k, f = _split(f, len(spots))
            i = spots[k]
            result = s[:i] + s[i + 1] + s[i] + s[i + 2 :]
    elif _TYPO_KINDS[kind] == "substitute":
        spots = _typo_spots(s)[1]
        if spots:
            k, f = _split(f, len(spots))
            i = spots[k]
            near = _NEIGHBOURS[s[i].lower()]
            j, f = _split(f, len(near))
            new = near[j].upper() if s[i].isupper() else near[j]
            result = s[:i] + new + s[i + 1 :]
    elif _TYPO_KINDS[kind] == "duplicate":
        i, f = _split(f, n)
        result = s[: i + 1] + s[i:]
    if result == s:  # deletion, or the fallback of an impossible transposition/substitution
        i, f = _split(f, n)
        result = s[:i] + s[i + 1 :]
    return result


# ---------------------------------------------------------------------------------------------------
# Vectorised helpers
# ---------------------------------------------------------------------------------------------------


def pick(pool: npt.NDArray[np.generic], idx: npt.ArrayLike) -> ObjArray:
    """``pool[idx]`` as an ``object`` array (a fresh, writable copy)."""
    return np.asarray(pool, dtype=object)[np.asarray(idx, dtype=np.intp)]


def apply_array(
    func: Callable[..., str],
    values: npt.ArrayLike,
    mask: npt.ArrayLike,
    u: npt.ArrayLike | None = None,
) -> ObjArray:
    """Apply a scalar string function to the rows where ``mask`` is True; other rows are unchanged.

    ``func(value)`` is called, or ``func(value, u[i])`` when ``u`` (one uniform per row, same length as
    ``values``) is given - e.g. ``apply_array(typo, names, mask, u)`` or ``apply_array(kk_to_ru, names,
    mask)``. Only the masked rows are visited, so a column of a million rows with 2 % changes costs 20 000
    calls (the transliteration functions are also cached per distinct string). Returns a new 1-D ``object``
    array; ``values`` is not modified.
    """
    out = np.array(values, dtype=object).reshape(-1)
    m = np.asarray(mask, dtype=bool).reshape(-1)
    if m.shape != out.shape:
        raise ValueError(f"mask has {m.size} rows, values {out.size}")
    rows = np.flatnonzero(m)
    if u is None:
        for i in rows:
            out[i] = func(out[i])
    else:
        uu = np.asarray(u, dtype=np.float64).reshape(-1)
        if uu.shape != out.shape:
            raise ValueError(f"u has {uu.size} rows, values {out.size}")
        for i in rows:
            out[i] = func(out[i], float(uu[i]))
    return out
