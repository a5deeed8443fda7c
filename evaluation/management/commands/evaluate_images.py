"""python manage.py evaluate_images --synthetic job:<pk>|model:<name> --real modality=CXR,..."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from evaluation.quality import DEFAULT_RESAMPLES, EvaluationError, evaluate

STEPS = [
    "loading images",
    "feature extractor",
    "fidelity figures",
    "memorization",
    "machine observer",
]


def _fmt(slot) -> str:
    if not isinstance(slot, dict) or slot.get("estimate") is None:
        return f"not defined ({slot.get('not_defined') if isinstance(slot, dict) else '?'})"
    text = f"{slot['estimate']:.4g}"
    if slot.get("ci_low") is not None:
        text += f" [{slot['ci_low']:.3g}, {slot['ci_high']:.3g}]"
    return text


class Command(BaseCommand):
    help = "Fidelity, memorization and machine observer of synthetic images against real ones."

    def add_arguments(self, parser):
        parser.add_argument("--synthetic", required=True, help="job:<pk> or model:<name>")
        parser.add_argument("--real", default="", help="e.g. modality=CXR,finding=normal")
        parser.add_argument("--epochs", type=int, default=None)
        parser.add_argument("--input-size", type=int, default=None)
        parser.add_argument(
            "--resamples",
            type=int,
            default=DEFAULT_RESAMPLES,
            help="bootstrap resamples of each 95%% interval (0: point estimates only)",
        )

    def handle(self, *args, synthetic, real, epochs, input_size, resamples=None, **options):
        bar = tqdm(total=len(STEPS), desc="evaluate", unit="step", file=self.stderr._out)

        def progress(step: str) -> None:
            if bar.n < len(STEPS) and STEPS.index(step) > 0:
                bar.update(1)
            bar.set_postfix_str(step)

        try:
            evaluation = evaluate(
                synthetic,
                real,
                progress=progress,
                epochs=epochs,
                input_size=input_size,
                n_resamples=DEFAULT_RESAMPLES if resamples is None else resamples,
            )
        except EvaluationError as error:
            raise CommandError(str(error)) from None
        finally:
            bar.update(len(STEPS) - bar.n)
            bar.close()
        report = evaluation.report
        out = self.stdout
        out.write(
            f"Quality evaluation #{evaluation.pk}: {evaluation.n_synthetic} synthetic vs "
            f"{evaluation.n_real} real images, extractor {evaluation.extractor}"
        )
        self._figures(report["quality"], "at the model's resolution")
        if "quality_display" in report:
            self._figures(report["quality_display"], "at the study's display profile")
        observer = report["observer"]
        out.write(f"  Machine observer AUC {_fmt(observer['auc'])}")
        memo = report["memorization"]
        if memo.get("not_defined"):
            out.write(f"  Memorization: not defined ({memo['not_defined']})")
        elif evaluation.flagged_count:
            out.write(
                self.style.WARNING(
                    f"  WARNING: {evaluation.flagged_count} synthetic image(s) flagged as possible "
                    "copies of real images: judge the pairs on the model or job page"
                )
            )
        else:
            out.write("  Memorization: no synthetic image flagged")
        for note in report["quality"].get("notes", []):
            out.write(f"  note: {note}")

    def _figures(self, quality: dict, where: str) -> None:
        if "metrics" not in quality:  # e.g. the study's profile cannot present the images
            reason = quality.get("not_defined") or "no figures"
            self.stdout.write(f"  Fidelity {where}: not defined ({reason})")
            return
        self.stdout.write(f"  Fidelity {where} (95% bootstrap intervals in brackets):")
        for metric in quality["metrics"]:
            self.stdout.write(
                f"  {metric['label']:<18} {_fmt(metric['value'])}   real-vs-real baseline "
                f"{_fmt(metric['baseline'])}"
            )
