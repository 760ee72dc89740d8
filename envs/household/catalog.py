"""What a household contains: room types, receptacle kinds and object kinds.

Everything here is static data. Names follow ALFWorld's text world (``cabinet 3``,
``sinkbasin 1``, ``desklamp 1``); types map to ALFRED's PDDL type names
(``CabinetType``, ``SinkBasinType``) for the PDDL export.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Object property bits.
PICK, CLEAN, HEAT, COOL, TOGGLE = 1, 2, 4, 8, 16

ROOMS: tuple[str, ...] = ("kitchen", "bedroom", "bathroom", "livingroom")


@dataclass(frozen=True)
class ReceptacleKind:
    """A kind of receptacle that a room may hold ``lo..hi`` of."""

    name: str
    """Text name, e.g. ``"cabinet"`` (instances are ``cabinet 1``, ``cabinet 2``...)."""
    pddl: str
    """ALFRED receptacle type, e.g. ``"CabinetType"``."""
    openable: bool
    lo: int
    hi: int
    prep: str = "on"
    """``"in"`` or ``"on"``: how goal text places an object there."""


def _r(name: str, pddl: str, openable: bool, lo: int, hi: int, prep: str = "on") -> ReceptacleKind:
    return ReceptacleKind(name, pddl, openable, lo, hi, prep)


#: Receptacle kinds per room. ``lo == 0`` kinds are optional.
RECEPTACLES: dict[str, tuple[ReceptacleKind, ...]] = {
    "kitchen": (
        _r("cabinet", "CabinetType", True, 2, 8, "in"),
        _r("coffeemachine", "CoffeeMachineType", False, 1, 1, "in"),
        _r("countertop", "CounterTopType", False, 1, 3),
        _r("diningtable", "DiningTableType", False, 0, 1),
        _r("drawer", "DrawerType", True, 1, 4, "in"),
        _r("fridge", "FridgeType", True, 1, 1, "in"),
        _r("garbagecan", "GarbageCanType", False, 1, 1, "in"),
        _r("microwave", "MicrowaveType", True, 1, 1, "in"),
        _r("shelf", "ShelfType", False, 0, 3),
        _r("sinkbasin", "SinkBasinType", False, 1, 1, "in"),
        _r("stoveburner", "StoveBurnerType", False, 2, 4),
        _r("toaster", "ToasterType", False, 0, 1, "in"),
    ),
    "bedroom": (
        _r("armchair", "ArmChairType", False, 0, 1),
        _r("bed", "BedType", False, 1, 1),
        _r("desk", "DeskType", False, 1, 2),
        _r("drawer", "DrawerType", True, 2, 6, "in"),
        _r("dresser", "DresserType", False, 0, 1),
        _r("garbagecan", "GarbageCanType", False, 1, 1, "in"),
        _r("laundryhamper", "LaundryHamperType", False, 0, 1, "in"),
        _r("safe", "SafeType", True, 0, 1, "in"),
        _r("shelf", "ShelfType", False, 1, 5),
        _r("sidetable", "SideTableType", False, 0, 2),
    ),
    "bathroom": (
        _r("bathtubbasin", "BathtubBasinType", False, 0, 1, "in"),
        _r("cabinet", "CabinetType", True, 1, 4, "in"),
        _r("countertop", "CounterTopType", False, 1, 1),
        _r("drawer", "DrawerType", True, 0, 4, "in"),
        _r("garbagecan", "GarbageCanType", False, 1, 1, "in"),
        _r("handtowelholder", "HandTowelHolderType", False, 0, 1),
        _r("shelf", "ShelfType", False, 0, 2),
        _r("sinkbasin", "SinkBasinType", False, 1, 2, "in"),
        _r("toilet", "ToiletType", False, 1, 1),
        _r("toiletpaperhanger", "ToiletPaperHangerType", False, 1, 1),
        _r("towelholder", "TowelHolderType", False, 0, 1),
    ),
    "livingroom": (
        _r("armchair", "ArmChairType", False, 0, 2),
        _r("cabinet", "CabinetType", True, 0, 4, "in"),
        _r("coffeetable", "CoffeeTableType", False, 1, 1),
        _r("drawer", "DrawerType", True, 1, 4, "in"),
        _r("dresser", "DresserType", False, 0, 1),
        _r("garbagecan", "GarbageCanType", False, 1, 1, "in"),
        _r("shelf", "ShelfType", False, 1, 4),
        _r("sidetable", "SideTableType", False, 1, 2),
        _r("sofa", "SofaType", False, 1, 1),
        _r("tvstand", "TVStandType", False, 0, 1),
    ),
}


@dataclass(frozen=True)
class ObjectKind:
    """A kind of object: its properties and where it plausibly starts."""

    name: str
    pddl: str
    props: int
    """Bitmask of :data:`PICK`, :data:`CLEAN`, :data:`HEAT`, :data:`COOL`, :data:`TOGGLE`."""
    starts: tuple[str, ...]
    """Receptacle kinds (names) it may start in; the first present one is also a goal."""


_F = PICK | CLEAN | HEAT | COOL  # food-like: clean, heat and cool


def _o(name: str, pddl: str, props: int, *starts: str) -> ObjectKind:
    return ObjectKind(name, pddl, props, tuple(starts))


#: Object kinds per room.
OBJECTS: dict[str, tuple[ObjectKind, ...]] = {
    "kitchen": (
        _o("apple", "AppleType", _F, "countertop", "diningtable", "fridge", "garbagecan"),
        _o("bread", "BreadType", PICK | HEAT | COOL, "countertop", "diningtable", "fridge"),
        _o("egg", "EggType", _F, "fridge", "countertop", "garbagecan", "diningtable"),
        _o("potato", "PotatoType", _F, "fridge", "countertop", "garbagecan", "diningtable"),
        _o("tomato", "TomatoType", _F, "fridge", "countertop", "diningtable", "sinkbasin"),
        _o("lettuce", "LettuceType", PICK | CLEAN | COOL, "fridge", "countertop", "diningtable"),
        _o("mug", "MugType", _F, "cabinet", "coffeemachine", "countertop", "sinkbasin", "shelf"),
        _o("cup", "CupType", _F, "cabinet", "countertop", "fridge", "sinkbasin", "diningtable"),
        _o("plate", "PlateType", _F, "cabinet", "countertop", "diningtable", "shelf"),
        _o("bowl", "BowlType", PICK | CLEAN | COOL, "cabinet", "countertop", "fridge", "shelf"),
        _o("pan", "PanType", PICK | CLEAN | COOL, "stoveburner", "cabinet", "countertop"),
        _o("pot", "PotType", PICK | CLEAN | COOL, "stoveburner", "cabinet", "countertop"),
        _o("knife", "KnifeType", PICK | CLEAN, "countertop", "drawer", "diningtable"),
        _o("butterknife", "ButterKnifeType", PICK | CLEAN, "drawer", "countertop", "diningtable"),
        _o("fork", "ForkType", PICK | CLEAN, "drawer", "countertop", "diningtable"),
        _o("spoon", "SpoonType", PICK | CLEAN, "drawer", "countertop", "diningtable"),
        _o("spatula", "SpatulaType", PICK | CLEAN, "drawer", "countertop", "diningtable"),
        _o("ladle", "LadleType", PICK | CLEAN, "drawer", "countertop", "diningtable"),
        _o("kettle", "KettleType", PICK | CLEAN, "stoveburner", "cabinet", "countertop"),
        _o("saltshaker", "SaltShakerType", PICK, "cabinet", "countertop", "shelf", "drawer"),
        _o("peppershaker", "PepperShakerType", PICK, "cabinet", "countertop", "shelf", "drawer"),
        _o("dishsponge", "DishSpongeType", PICK | CLEAN, "sinkbasin", "countertop", "drawer"),
        _o("winebottle", "WineBottleType", PICK | COOL, "cabinet", "countertop", "fridge", "shelf"),
    ),
    "bedroom": (
        _o("alarmclock", "AlarmClockType", PICK, "desk", "dresser", "shelf", "sidetable"),
        _o("book", "BookType", PICK, "bed", "desk", "shelf", "sidetable", "drawer"),
        _o("cd", "CDType", PICK, "desk", "drawer", "shelf", "safe", "garbagecan"),
        _o("cellphone", "CellPhoneType", PICK, "bed", "desk", "drawer", "sidetable", "dresser"),
        _o("creditcard", "CreditCardType", PICK, "desk", "drawer", "shelf", "dresser", "safe"),
        _o("keychain", "KeyChainType", PICK, "desk", "drawer", "shelf", "dresser", "safe"),
        _o("laptop", "LaptopType", PICK, "bed", "desk", "dresser", "armchair"),
        _o("pen", "PenType", PICK, "desk", "drawer", "shelf", "sidetable"),
        _o("pencil", "PencilType", PICK, "desk", "drawer", "shelf", "sidetable"),
        _o("pillow", "PillowType", PICK, "bed", "armchair"),
        _o("mug", "MugType", PICK, "desk", "shelf", "sidetable", "dresser"),
        _o("bowl", "BowlType", PICK, "desk", "shelf", "sidetable", "dresser"),
        _o("cloth", "ClothType", PICK, "laundryhamper", "drawer", "bed", "dresser"),
        _o("baseballbat", "BaseballBatType", PICK, "bed", "desk", "armchair"),
    ),
    "bathroom": (
        _o("soapbar", "SoapBarType", PICK | CLEAN, "countertop", "bathtubbasin", "sinkbasin",
           "toilet", "cabinet"),
        _o("soapbottle", "SoapBottleType", PICK, "countertop", "cabinet", "toilet", "shelf"),
        _o("toiletpaper", "ToiletPaperType", PICK, "toiletpaperhanger", "cabinet", "toilet",
           "countertop"),
        _o("spraybottle", "SprayBottleType", PICK, "cabinet", "toilet", "countertop", "shelf"),
        _o("candle", "CandleType", PICK, "countertop", "toilet", "shelf", "cabinet"),
        _o("cloth", "ClothType", PICK | CLEAN, "cabinet", "countertop", "bathtubbasin", "drawer"),
        _o("handtowel", "HandTowelType", PICK, "handtowelholder", "countertop", "cabinet"),
        _o("towel", "TowelType", PICK, "towelholder", "bathtubbasin", "cabinet", "shelf"),
        _o("tissuebox", "TissueBoxType", PICK, "toilet", "countertop", "shelf", "cabinet"),
        _o("dishsponge", "DishSpongeType", PICK | CLEAN, "sinkbasin", "cabinet", "countertop"),
        _o("scrubbrush", "ScrubBrushType", PICK, "toilet", "cabinet", "countertop"),
        _o("plunger", "PlungerType", PICK, "toilet", "cabinet", "garbagecan"),
    ),
    "livingroom": (
        _o("book", "BookType", PICK, "coffeetable", "shelf", "sidetable", "sofa", "drawer"),
        _o("box", "BoxType", PICK, "coffeetable", "shelf", "sofa", "armchair", "tvstand"),
        _o("cellphone", "CellPhoneType", PICK, "sofa", "coffeetable", "sidetable", "drawer"),
        _o("creditcard", "CreditCardType", PICK, "coffeetable", "sofa", "drawer", "sidetable"),
        _o("keychain", "KeyChainType", PICK, "coffeetable", "drawer", "shelf", "sidetable"),
        _o("laptop", "LaptopType", PICK, "sofa", "coffeetable", "armchair", "tvstand"),
        _o("newspaper", "NewspaperType", PICK, "sofa", "coffeetable", "armchair", "garbagecan"),
        _o("pillow", "PillowType", PICK, "sofa", "armchair"),
        _o("remotecontrol", "RemoteControlType", PICK, "sofa", "coffeetable", "tvstand",
           "sidetable", "armchair"),
        _o("statue", "StatueType", PICK, "shelf", "coffeetable", "sidetable", "tvstand",
           "dresser"),
        _o("vase", "VaseType", PICK, "shelf", "coffeetable", "sidetable", "tvstand", "cabinet"),
        _o("watch", "WatchType", PICK, "coffeetable", "sidetable", "drawer", "shelf"),
        _o("plate", "PlateType", PICK, "coffeetable", "shelf", "sidetable", "cabinet"),
        _o("tissuebox", "TissueBoxType", PICK, "coffeetable", "sidetable", "shelf"),
    ),
}

#: Lamps: toggleable, not pickupable, standing on one of these receptacle kinds.
LAMPS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "bedroom": ("desklamp", "DeskLampType", ("desk", "sidetable", "dresser")),
    "livingroom": ("floorlamp", "FloorLampType", ("sidetable", "dresser", "coffeetable")),
}

#: Appliance receptacle kinds used by the clean / heat / cool actions.
APPLIANCE = {CLEAN: "sinkbasin", HEAT: "microwave", COOL: "fridge"}

#: Receptacle kinds never used as a goal receptacle (they are tools, not destinations).
NOT_GOALS = frozenset({"sinkbasin", "microwave", "stoveburner", "toaster", "garbagecan",
                       "toiletpaperhanger", "handtowelholder", "towelholder"})


def kind_by_name(room: str) -> dict[str, ReceptacleKind]:
    """Receptacle kinds of ``room`` keyed by name."""
    return {k.name: k for k in RECEPTACLES[room]}


def prep_of(receptacle_kind: str) -> str:
    """``"in"`` or ``"on"`` for goal text about ``receptacle_kind``."""
    for kinds in RECEPTACLES.values():
        for k in kinds:
            if k.name == receptacle_kind:
                return k.prep
    return "on"


def pddl_type(name: str) -> str:
    """ALFRED PDDL type of a receptacle, object or lamp kind name."""
    for kinds in RECEPTACLES.values():
        for k in kinds:
            if k.name == name:
                return k.pddl
    for okinds in OBJECTS.values():
        for o in okinds:
            if o.name == name:
                return o.pddl
    for lamp, pddl, _ in LAMPS.values():
        if lamp == name:
            return pddl
    raise KeyError(name)
