"""Demo money: the platform's fee is set before the story's orders are paid (so each is settled as it is
paid); afterwards Guanpuyang's cooperative is paid its balance, the bank's reference recorded, and the
payout shared out among its member households — through the same services the pages use.

Idempotent: the fee rule, the bank account, the rule and the households are set once; the payout is made
only if the cooperative has none yet, and distributed only once.
"""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.core.quantities import display_cny, fen_to_cny
from marketplace.settlement import journal, payouts, shares
from marketplace.settlement.models import Distribution, FeeRule, PayeeAccount, Payout

#: The platform's service fee in the demo: 1 % of each order, at least ¥1, at most ¥500.
DEMO_FEE = {"percent": "1", "floor_cny": "1.00", "ceiling_cny": "500.00"}
#: Guanpuyang's rule: 20 % to the collective fund, 80 % to member households by shares.
DEMO_RULE = {"collective_percent": "20", "households_percent": "80"}
#: Member households of the demo (fictional), with their share counts (股份).
DEMO_HOUSEHOLDS = """叶建国 5
叶秀英 4
毛志强 3
季红梅 3
吴国平 4
徐丽娟 2
叶长青 3
毛海燕 2
金伟明 4
季永福 3
吴小芳 2
徐天华 3"""
DEMO_BANK_REFERENCE = "LQNS-20261105-000187"


def seed_fee_rule(ctx) -> None:
    s = ctx.session
    if s.scalar(sa.select(FeeRule.id).limit(1)) is None:
        journal.set_fee_rule(s, actor=ctx.users["bureau"], **DEMO_FEE)


def seed_settlement(ctx) -> None:
    s = ctx.session
    # Orders paid before settlement existed (an older demo database) are settled now; a no-op otherwise.
    journal.settle_unsettled(s)
    coop = ctx.users["guanpuyang"]
    org_id = coop.organisation_id
    if s.scalar(sa.select(PayeeAccount.id).where(PayeeAccount.organisation_id == org_id)) is None:
        payouts.set_payee_account(s, actor=coop, account_name="龙泉市兰巨乡官埔垟村股份经济合作社",
                                  bank_name="浙江龙泉农村商业银行兰巨支行", account_number="201000712345678")
    if shares.current_rule(s, org_id) is None:
        shares.set_rule(s, actor=coop, **DEMO_RULE)
    if not shares.active_households(s, org_id):
        shares.replace_households(s, actor=coop, text=DEMO_HOUSEHOLDS)
    payout = s.scalar(sa.select(Payout).where(Payout.seller_organisation_id == org_id).order_by(Payout.id))
    if payout is None:
        balance = journal.balance(s, journal.seller(org_id))
        if balance <= 0:
            return
        payout = payouts.create_batch(s, actor=ctx.users["bureau"], amounts={org_id: balance}).payouts[0]
    if payout.status == "pending":
        payouts.mark_paid(s, payout, actor=ctx.users["bureau"], reference=DEMO_BANK_REFERENCE)
    if payout.status == "paid" and s.scalar(sa.select(Distribution.id).where(Distribution.payout_id == payout.id)) is None:
        shares.distribute(s, payout, actor=coop)
    ctx.say(f"Guanpuyang paid out ¥{display_cny(fen_to_cny(payout.amount_fen))} and distributed to "
            f"{len(shares.active_households(s, org_id))} households")
