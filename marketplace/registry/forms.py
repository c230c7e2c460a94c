"""Forms of the registry pages (projects, documents, review, issuance, listings, losses)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from marketplace.core.db import max_length
from marketplace.registry.models import BufferLoss, CreditBatch, Project, ProjectTransition


class ProjectForm(FlaskForm):
    name = StringField(_l("Project name"), validators=[DataRequired(), Length(max=max_length(Project.name))])
    name_en = StringField(_l("English name (optional)"),
                          validators=[Optional(), Length(max=max_length(Project.name_en))])
    village_id = SelectField(_l("Village"), coerce=int, validators=[DataRequired()])
    area_hectares = StringField(_l("Area (hectares)"), validators=[DataRequired(), Length(max=20)])
    forest_type = StringField(_l("Forest type"),
                              validators=[DataRequired(), Length(max=max_length(Project.forest_type))])
    methodology = StringField(_l("Methodology"), default="CCER-14-001-V01",
                              validators=[DataRequired(), Length(max=max_length(Project.methodology))])
    crediting_start = DateField(_l("Crediting period starts"), validators=[DataRequired()])
    crediting_end = DateField(_l("Crediting period ends"), validators=[DataRequired()])
    location = StringField(_l("Location"), validators=[Optional(), Length(max=max_length(Project.location))])
    description = TextAreaField(_l("Description"),
                                validators=[Optional(), Length(max=max_length(Project.description))])


class DocumentForm(FlaskForm):
    kind = SelectField(_l("Kind of document"), choices=[
        ("verification_statement", _l("Verification statement")), ("monitoring_report", _l("Monitoring report")),
        ("other", _l("Other"))])
    #: the limit is said by the page (UPLOAD_MAX_MB), so label, error and refusal agree
    file = FileField(_l("PDF file"), validators=[FileRequired(_l("Choose a PDF file."))])


class ReviewForm(FlaskForm):
    decision = SelectField(_l("Decision"), choices=[("verified", _l("Verify the project")), ("rejected", _l("Reject"))])
    note = TextAreaField(_l("Note to the cooperative"),
                         validators=[Optional(), Length(max=max_length(ProjectTransition.note))])


class BatchForm(FlaskForm):
    quantity = StringField(_l("Quantity issued (t)"), validators=[DataRequired(), Length(max=30)])
    vintage_start = DateField(_l("Monitoring period starts"), validators=[DataRequired()])
    vintage_end = DateField(_l("Monitoring period ends"), validators=[DataRequired()])
    verification_body = StringField(_l("Verification body"),
                                    validators=[DataRequired(), Length(max=max_length(CreditBatch.verification_body))])
    report_reference = StringField(_l("Verification report reference"),
                                   validators=[DataRequired(), Length(max=max_length(CreditBatch.report_reference))])
    scheme = SelectField(_l("Scheme"), choices=[
        ("zhejiang_forestry", _l("Zhejiang forestry carbon sink")), ("lishui_inclusive", _l("Lishui carbon inclusion")),
        ("ccer", _l("CCER")), ("other", _l("Other"))], default="other", validate_choice=False)
    methodology_code = StringField(_l("Methodology code"), default="CCER-14-001",
                                   validators=[Optional(), Length(max=max_length(CreditBatch.methodology_code))])
    methodology_version = StringField(_l("Methodology version"), default="V01",
                                      validators=[Optional(), Length(max=max_length(CreditBatch.methodology_version))])
    event_eligible = BooleanField(_l("Eligible for large-event neutralisation (MEE guideline)"))
    #: Issuance cannot be undone (the serial block is the batch's for ever): a deliberate tick, not a click.
    confirmed = BooleanField(_l("I have checked the quantity and the monitoring period against the verification "
                                "report. Issued credits cannot be withdrawn."),
                             validators=[DataRequired(_l("Tick the box to confirm: issuing cannot be undone."))])


class ListingForm(FlaskForm):
    batch_id = SelectField(_l("Batch"), coerce=int, validators=[DataRequired()])
    quantity = StringField(_l("Quantity to list (t)"), validators=[DataRequired(), Length(max=30)])
    price = StringField(_l("Price (CNY per tonne)"), validators=[DataRequired(), Length(max=20)])
    min_order = StringField(_l("Minimum order (t)"), default="1", validators=[DataRequired(), Length(max=30)])


class LossForm(FlaskForm):
    batch_id = SelectField(_l("Batch"), coerce=int, validators=[DataRequired()])
    kind = SelectField(_l("Kind of loss"), choices=[("fire", _l("Fire")), ("pests", _l("Pests or disease")),
                                                     ("logging", _l("Logging")), ("other", _l("Other"))])
    quantity = StringField(_l("Buffer units to cancel (t)"), validators=[DataRequired(), Length(max=30)])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=max_length(BufferLoss.reason))])


class PledgeForm(FlaskForm):
    batch_id = SelectField(_l("Batch"), coerce=int, validators=[DataRequired()])
    tonnes = StringField(_l("Units to freeze (t)"), validators=[DataRequired(), Length(max=30)])
    bank_name = StringField(_l("Lending bank"), validators=[DataRequired(), Length(max=200)])
    contract_reference = StringField(_l("Loan contract reference"), validators=[DataRequired(), Length(max=100)])
    loan_amount = StringField(_l("Loan amount (CNY)"), validators=[DataRequired(), Length(max=20)])
    term_start = DateField(_l("Term starts"), validators=[DataRequired()])
    term_end = DateField(_l("Term ends"), validators=[DataRequired()])
